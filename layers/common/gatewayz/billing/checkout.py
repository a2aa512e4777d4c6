"""Buying credit or a plan (docs/api.md, billing): `POST /v1/billing/checkout`.

The credit a payment grants is decided here, on the server, and written to a `payments`
row before the customer is sent to Stripe; the webhook grants exactly that, whatever
the session's metadata says. One attempt is one row, and the row's id is Stripe's
idempotency key, so a retried call never opens two sessions for it. A credit purchase
takes the account's attached percent coupon (`gatewayz.coupons.discount`): the row gets
`coupon_id`/`discount_cents` before the session is created, and Stripe charges the price
less the discount for the same credit.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gatewayz import config, db, errors, jsonbody
from gatewayz.billing import customers, money, payments, stripe_client
from gatewayz.coupons import discount
from gatewayz.identity import audit, principal
from gatewayz.record import record

if TYPE_CHECKING:
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

SCOPES = ("billing:write",)
FIELDS = frozenset({"amount", "pack", "plan", "success_url", "cancel_url"})
URL_MAX = 2048
NANOS_PER_CENT = money.NANOS_PER_USD // 100


@record
class Order:
    """What the customer buys: the price, the credit it grants, and what it is."""

    kind: str  # payments.kind: credit_purchase or subscription
    amount_cents: int
    credit_nanos: int
    name: str
    pack_id: str | None = None
    plan_id: str | None = None
    stripe_price_id: str | None = None


def create(request: Request, raw: bytes) -> dict[str, Any]:
    """Open a Stripe Checkout Session for the caller's account; `{"data": {id, url}}`.

    Raises:
        InvalidRequest: the body is not one of amount, pack or plan, or a URL is not http(s).
        RoleDenied / ScopeDenied: the caller may not spend the account's money.
        MissingConfiguration: `STRIPE_SECRET_KEY` is unset.
        UpstreamError: Stripe could not be reached.
    """
    caller = principal.from_request(request, SCOPES)
    principal.require_manager(caller)
    body = _object(raw)
    order = _order(caller, body)
    success = _url(body, "success_url", "/?checkout=success")
    cancel = _url(body, "cancel_url", "/?checkout=cancel")
    customer_id = customers.ensure(caller.account_id)
    if order.kind == "credit_purchase":
        discount.free_attached(caller.account_id)
    payment_id, off = _record(caller, order, request)
    session = _open_session(caller, order, payment_id, customer_id, success, cancel, off)
    data = {"id": session.id, "url": session.url, "payment_id": payment_id}
    return {"data": data | ({"coupon": off.shown()} if off else {})}


def _record(
    caller: Principal, order: Order, request: Request
) -> tuple[str, discount.Discount | None]:
    """Write the attempt's payments row (pending, the credit it grants, an attached
    coupon's discount), with its audit."""
    with db.transaction() as cur:
        row = cur.execute(
            """INSERT INTO payments (account_id, user_id, kind, amount_cents, currency,
                                     credit_nanos, status, pack_id, plan_id)
               VALUES (%s, %s, %s, %s, 'usd', %s, 'pending', %s, %s) RETURNING id""",
            (caller.account_id, caller.user_id, order.kind, order.amount_cents,
             order.credit_nanos, order.pack_id, order.plan_id),
        ).fetchone()  # fmt: skip
        assert row is not None
        payment_id = str(row[0])
        off = None
        if order.kind == "credit_purchase":
            off = discount.claim(cur, caller.account_id, payment_id, order.amount_cents)
        audit.record(
            cur, action="payment.checkout_started", target_type="payment",
            target_id=payment_id, account_id=caller.account_id, principal=caller,
            after={"kind": order.kind, "amount_cents": order.amount_cents,
                   "credit_nanos": order.credit_nanos, "pack_id": order.pack_id,
                   "plan_id": order.plan_id, "coupon_id": off.coupon_id if off else None,
                   "discount_cents": off.cents if off else 0},
            request=request,
        )  # fmt: skip
    return payment_id, off


def _open_session(
    caller: Principal,
    order: Order,
    payment_id: str,
    customer_id: str,
    success: str,
    cancel: str,
    off: discount.Discount | None = None,
) -> Any:
    import stripe

    tags = {"payment_id": payment_id, "account_id": caller.account_id}
    params: dict[str, Any] = {
        "customer": customer_id,
        "client_reference_id": caller.account_id,
        "metadata": tags,
        "success_url": success,
        "cancel_url": cancel,
    }
    if order.kind == "subscription":
        params |= {
            "mode": "subscription",
            "line_items": [{"price": order.stripe_price_id, "quantity": 1}],
            "subscription_data": {"metadata": tags},
        }
    else:
        name = order.name + (f" (coupon {off.code}: {off.percent_off}% off)" if off else "")
        params |= {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "usd", "unit_amount": order.amount_cents - (off.cents if off else 0),
                "product_data": {"name": name}}}],
            # The card is kept for auto top-ups (off-session PaymentIntents).
            "payment_intent_data": {"setup_future_usage": "off_session", "metadata": tags},
        }  # fmt: skip
    try:
        session = stripe_client.client().v1.checkout.sessions.create(
            params,  # type: ignore[arg-type]
            {"idempotency_key": f"gatewayz-checkout-{payment_id}"},
        )
    except stripe.StripeError as exc:
        db.execute(
            "UPDATE payments SET failure_message = %s, updated_at = now() WHERE id = %s",
            ("Stripe could not open the checkout.", payment_id),
        )
        raise customers.upstream(exc) from None
    db.execute(
        """UPDATE payments SET stripe_checkout_session_id = %s, updated_at = now()
            WHERE id = %s""",
        (session.id, payment_id),
    )
    return session


def _order(caller: Principal, body: dict[str, Any]) -> Order:
    chosen = [name for name in ("amount", "pack", "plan") if body.get(name) is not None]
    if len(chosen) != 1:
        raise errors.InvalidRequest(
            "Give exactly one of amount (USD), pack (a credit pack id) or plan (a plan id).",
            param=chosen[1] if len(chosen) > 1 else "amount",
        )
    if chosen[0] == "amount":
        cents = _cents(body["amount"])
        name = f"Gatewayz credit: ${payments.cents_text(cents)}"
        return Order("credit_purchase", cents, cents * NANOS_PER_CENT, name)
    if chosen[0] == "pack":
        return _pack(body["pack"])
    return _plan(caller, body["plan"])


def _cents(value: Any) -> int:
    settings = config.get_settings()
    low, high = settings.checkout_min_usd, settings.checkout_max_usd
    problem = f"amount must be a number of USD from {low} to {high}, with at most 2 decimals."
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.InvalidRequest(problem, param="amount")
    try:
        usd = Decimal(str(value))
    except InvalidOperation:
        raise errors.InvalidRequest(problem, param="amount") from None
    if not usd.is_finite() or usd != usd.quantize(Decimal("0.01")) or not low <= usd <= high:
        raise errors.InvalidRequest(problem, param="amount")
    return int(usd * 100)


def _pack(pack_id: Any) -> Order:
    row = None
    if isinstance(pack_id, str) and len(pack_id) <= 100:
        row = db.execute(
            """SELECT id, name, price_cents, credit_nanos FROM credit_packs
                WHERE id = %s AND is_active""",
            (pack_id,),
        ).fetchone()
    if row is None:
        raise errors.InvalidRequest("No such credit pack.", param="pack")
    return Order("credit_purchase", int(row[2]), int(row[3]), str(row[1]), pack_id=str(row[0]))


def _plan(caller: Principal, plan_id: Any) -> Order:
    row = None
    if isinstance(plan_id, str) and len(plan_id) <= 100:
        row = db.execute(
            """SELECT id, name, monthly_price_cents, included_credit_nanos, stripe_price_id
                 FROM plans WHERE id = %s AND kind = 'subscription' AND is_public""",
            (plan_id,),
        ).fetchone()
    if row is None or row[4] is None:
        raise errors.InvalidRequest(
            "No such plan to subscribe to (a public plan with a Stripe price).", param="plan"
        )
    live = db.execute(
        """SELECT 1 FROM subscriptions WHERE account_id = %s
              AND status IN ('trialing', 'active', 'past_due', 'unpaid', 'paused')""",
        (caller.account_id,),
    ).fetchone()
    if live is not None:
        raise errors.InvalidRequest(
            "This account already has a subscription: change or cancel it in the billing "
            "portal (POST /v1/billing/portal).",
            param="plan",
        )
    return Order("subscription", int(row[2]), int(row[3]), str(row[1]),
                 plan_id=str(row[0]), stripe_price_id=str(row[4]))  # fmt: skip


def _url(body: dict[str, Any], name: str, default_path: str) -> str:
    given = http_url(body.get(name), name)
    return given or config.get_settings().public_url.rstrip("/") + default_path


def http_url(value: Any, name: str) -> str | None:
    """`value` if it is an http(s) URL, None if absent.

    Raises:
        InvalidRequest: anything else (param `name`).
    """
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) and len(value) <= URL_MAX else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.InvalidRequest(f"{name} must be an http(s) URL.", param=name)
    return str(value)


def _object(raw: bytes) -> dict[str, Any]:
    body = jsonbody.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The body must be a JSON object.")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise errors.InvalidRequest(f"Unknown field {unknown[0]!r}.", param=unknown[0])
    return body
