"""The Stripe customer portal (docs/api.md, billing): `POST /v1/billing/portal`, where an
account's owner changes its card, its plan (at period end) or cancels it. We follow what
they do there through the webhook's events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import config, errors, jsonbody
from gatewayz.billing import checkout, customers, stripe_client
from gatewayz.identity import principal

if TYPE_CHECKING:
    from starlette.requests import Request


def create(request: Request, raw: bytes) -> dict[str, Any]:
    """A portal session for the caller's account: `{"data": {"url"}}`.

    Raises:
        BillingNotSetUp: 404, the account has never checked out (no Stripe customer).
        InvalidRequest: `return_url` is not an http(s) URL, or another field was sent.
        RoleDenied / ScopeDenied: the caller may not manage the account's billing.
        MissingConfiguration / UpstreamError: Stripe is not configured or failed.
    """
    import stripe

    caller = principal.from_request(request, checkout.SCOPES)
    principal.require_manager(caller)
    body = jsonbody.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict) or set(body) - {"return_url"}:
        raise errors.InvalidRequest("The body may only hold return_url.", param="return_url")
    return_url = checkout.http_url(body.get("return_url"), "return_url") or (
        config.get_settings().public_url.rstrip("/") + "/"
    )
    customer_id = customers.existing(caller.account_id)
    if customer_id is None:
        raise errors.BillingNotSetUp(
            "This account has no billing details yet: buy credit or a plan first "
            "(POST /v1/billing/checkout)."
        )
    try:
        session = stripe_client.client().v1.billing_portal.sessions.create(
            {"customer": customer_id, "return_url": return_url}
        )
    except stripe.StripeError as exc:
        raise customers.upstream(exc) from None
    return {"data": {"url": session.url}}
