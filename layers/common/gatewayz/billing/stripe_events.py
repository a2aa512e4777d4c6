"""Stripe webhooks (docs/api.md, webhooks): `POST /webhooks/stripe`.

The signature is checked on the raw body (tolerance 300 s). Then one transaction records
the event id (`stripe_events`, UNIQUE) and runs its handler: a replay finds the id and
does nothing, and a handler's ledger changes commit with the event row or not at all.
Handlers act by state (they compare what Stripe reports with our rows and change only
the difference), so events may arrive in any order. Types with no handler are recorded
and answered 200.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gatewayz import config, db, errors, jsonbody
from gatewayz.billing import payment_events, refunds, subscriptions
from gatewayz.billing.webhook_event import Event
from gatewayz.identity import auth
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

TOLERANCE_S = 300
SIGNATURE_HEADER = "Stripe-Signature"


# Each returns the id of the account it concerned (recorded with the event), or None.
HANDLERS: dict[str, Callable[[psycopg.Cursor[Any], Event], str | None]] = {
    "checkout.session.completed": payment_events.checkout_completed,
    "checkout.session.async_payment_succeeded": payment_events.checkout_completed,
    "checkout.session.async_payment_failed": payment_events.checkout_failed,
    "checkout.session.expired": payment_events.checkout_expired,
    "payment_intent.succeeded": payment_events.intent_succeeded,
    "payment_intent.payment_failed": payment_events.intent_failed,
    "charge.refunded": refunds.charge_refunded,
    "charge.dispute.created": refunds.dispute_created,
    "customer.subscription.created": subscriptions.subscription_changed,
    "customer.subscription.updated": subscriptions.subscription_changed,
    "customer.subscription.deleted": subscriptions.subscription_changed,
    "invoice.paid": subscriptions.invoice_paid,
    "invoice.payment_failed": subscriptions.invoice_failed,
}


def receive(payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify, record and apply one webhook delivery; what to answer Stripe.

    Raises:
        MissingConfiguration: `STRIPE_WEBHOOK_SECRET` is unset (503: Stripe retries).
        InvalidRequest: the signature is missing, wrong or too old, or the body is not an
            event (400, nothing recorded).
    """
    event = verify(payload, signature)
    with db.transaction() as cur:
        fresh = cur.execute(
            """INSERT INTO stripe_events (id, type, livemode, api_version, payload)
               VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id""",
            (event.id, event.type, *_envelope(payload)),
        ).fetchone()
        if fresh is None:
            return {"received": True, "duplicate": True}
        handler = HANDLERS.get(event.type)
        account_id = handler(cur, event) if handler is not None else None
        cur.execute(
            "UPDATE stripe_events SET processed_at = now(), account_id = %s WHERE id = %s",
            (account_id, event.id),
        )
    if account_id is not None:  # a plan may have changed: warm functions read it again
        auth.announce(account_id)
    get_logger().info(
        "stripe event", extra={"event_id": event.id, "type": event.type, "handled": bool(handler)}
    )
    return {"received": True}


def verify(payload: bytes, signature: str | None) -> Event:
    """The event in `payload`, if Stripe signed it with our secret in the last 300 s.

    Raises:
        MissingConfiguration: `STRIPE_WEBHOOK_SECRET` is unset.
        InvalidRequest: a bad signature or body.
    """
    import stripe

    secret = config.require("stripe_webhook_secret")
    if not signature:
        raise errors.InvalidRequest("Missing Stripe-Signature header.", param=SIGNATURE_HEADER)
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE_S)
    except stripe.SignatureVerificationError:
        raise errors.InvalidRequest(
            "The Stripe signature does not match this body, or it is too old.",
            param=SIGNATURE_HEADER,
        ) from None
    except ValueError:
        raise errors.InvalidJSON("The webhook body is not a Stripe event.") from None
    body = jsonbody.loads(payload)
    try:
        data = body["data"]
        if not str(body["id"]).startswith("evt_"):
            raise ValueError("not an event id")
        return Event(
            id=str(body["id"]),
            type=str(body["type"]),
            created=int(body.get("created") or 0),
            object=dict(data["object"]),
            previous_attributes=data.get("previous_attributes"),
        )
    except (KeyError, TypeError, ValueError):
        raise errors.InvalidRequest("The webhook body is not a Stripe event.") from None


def _envelope(payload: bytes) -> tuple[bool, str | None, str]:
    body = json.loads(payload)
    version = body.get("api_version")
    return (
        bool(body.get("livemode")),
        version if isinstance(version, str) else None,
        payload.decode(),
    )
