"""Subscriptions from Stripe (docs/api.md, webhooks): plans with a recurring price.

`customer.subscription.*` events upsert our row by Stripe id; the row keeps the time of
the event that last set it, so an older event arriving late changes nothing, and a
canceled subscription never comes back. The account's plan follows its live subscription
at once (its limits with it); with none, a subscriber falls back to `payg` if it ever
paid, else `free`. Each paid invoice grants the plan's monthly credit once
(`invoice:<id>`). Cancelling or downgrading at period end is Stripe's (the portal): we
follow the events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz.billing import payments
from gatewayz.billing.webhook_event import ref
from gatewayz.identity import audit
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    import psycopg

    from gatewayz.billing.webhook_event import Event

LIVE = ("active", "trialing", "past_due")
FINAL = frozenset({"canceled", "incomplete_expired"})  # Stripe never revives these
STATUSES = frozenset(
    {"incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled",
     "unpaid", "paused"}
)  # fmt: skip

_UPSERT = """
INSERT INTO subscriptions (account_id, plan_id, stripe_subscription_id, stripe_price_id, status,
                           current_period_start, current_period_end, cancel_at_period_end,
                           canceled_at, stripe_event_at)
VALUES (%(account)s, %(plan)s, %(id)s, %(price)s, %(status)s, to_timestamp(%(start)s),
        to_timestamp(%(end)s), %(cancel)s, to_timestamp(%(canceled)s), to_timestamp(%(at)s))
ON CONFLICT (stripe_subscription_id) DO UPDATE SET
    plan_id = EXCLUDED.plan_id, stripe_price_id = EXCLUDED.stripe_price_id,
    status = EXCLUDED.status, current_period_start = EXCLUDED.current_period_start,
    current_period_end = EXCLUDED.current_period_end,
    cancel_at_period_end = EXCLUDED.cancel_at_period_end, canceled_at = EXCLUDED.canceled_at,
    stripe_event_at = EXCLUDED.stripe_event_at, updated_at = now()
WHERE subscriptions.account_id = EXCLUDED.account_id
  AND (subscriptions.stripe_event_at IS NULL
       OR subscriptions.stripe_event_at <= EXCLUDED.stripe_event_at)
  AND (subscriptions.status NOT IN ('canceled', 'incomplete_expired')
       OR EXCLUDED.status IN ('canceled', 'incomplete_expired'))
RETURNING id
"""


def subscription_changed(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`customer.subscription.created`/`updated`/`deleted`: our row and the account's
    plan follow the subscription, unless a newer event already set them."""
    sub = event.object
    account_id = _account_of(cur, sub.get("customer"))
    if account_id is None:
        get_logger().warning("subscription of no account of ours", extra={"event_id": event.id})
        return None
    item = _first_item(sub)
    price_id = ref(item.get("price"))
    plan_id = _plan_of(cur, price_id)
    status = sub.get("status")
    if plan_id is None or status not in STATUSES:
        get_logger().error(
            "subscription to an unknown price or in an unknown status",
            extra={"event_id": event.id, "price": price_id, "status": status},
        )
        return account_id
    changed = cur.execute(
        _UPSERT,
        {
            "account": account_id, "plan": plan_id, "id": sub["id"], "price": price_id,
            "status": status, "cancel": bool(sub.get("cancel_at_period_end")),
            "start": sub.get("current_period_start") or item.get("current_period_start"),
            "end": sub.get("current_period_end") or item.get("current_period_end"),
            "canceled": sub.get("canceled_at"), "at": event.created,
        },
    ).fetchone()  # fmt: skip
    if changed is not None:
        audit.record(
            cur, action="subscription.updated", target_type="subscription",
            target_id=str(sub["id"]), account_id=account_id, actor_kind="stripe",
            after={"status": status, "plan_id": plan_id,
                   "cancel_at_period_end": bool(sub.get("cancel_at_period_end"))},
        )  # fmt: skip
        follow_plan(cur, account_id)
    return account_id


def follow_plan(cur: psycopg.Cursor[Any], account_id: str) -> str:
    """Put the account on its live subscription's plan, or, when it has none and is on a
    subscription plan, back on `payg` (it paid before) or `free`; its plan id."""
    row = cur.execute(
        """SELECT a.plan_id, p.kind,
                  (SELECT s.plan_id FROM subscriptions s
                    WHERE s.account_id = a.id AND s.status = ANY(%s)
                    ORDER BY s.updated_at DESC LIMIT 1),
                  EXISTS (SELECT 1 FROM payments WHERE account_id = a.id AND paid_at IS NOT NULL)
             FROM accounts a JOIN plans p ON p.id = a.plan_id
            WHERE a.id = %s FOR UPDATE OF a""",
        (list(LIVE), account_id),
    ).fetchone()
    assert row is not None
    current, kind, live_plan, ever_paid = row
    target = live_plan
    if target is None:
        if kind != "subscription":
            return str(current)
        target = "payg" if ever_paid else "free"
    if target == current:
        return str(current)
    cur.execute(
        """UPDATE accounts SET plan_id = %s, updated_at = now(),
                  trial_converted_at = CASE WHEN %s = 'trial' THEN now()
                                            ELSE trial_converted_at END
            WHERE id = %s""",
        (target, kind, account_id),
    )
    audit.record(
        cur, action="account.plan_changed", target_type="account", target_id=account_id,
        account_id=account_id, actor_kind="stripe",
        before={"plan_id": current}, after={"plan_id": target},
    )  # fmt: skip
    return str(target)


def invoice_paid(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`invoice.paid`: record the payment and grant the plan's monthly credit, once."""
    invoice = event.object
    invoice_id = ref(invoice.get("id"))
    subscription_id = _subscription_of(invoice)
    account_id = _account_of(cur, invoice.get("customer"))
    if account_id is None or invoice_id is None or subscription_id is None:
        return account_id  # not a subscription of ours: nothing to grant
    amount = int(invoice.get("amount_paid") or 0)
    if amount <= 0:  # nothing was paid (e.g. a Stripe-side trial): no credit for it
        return account_id
    payment = payments.find(cur, "stripe_invoice_id", invoice_id)
    if payment is None:
        plan_id = _invoice_plan(cur, invoice, subscription_id)
        if plan_id is None:
            get_logger().error("paid invoice of an unknown plan", extra={"event_id": event.id})
            return account_id
        cur.execute(
            """INSERT INTO payments (account_id, kind, stripe_invoice_id, stripe_subscription_id,
                                     amount_cents, currency, credit_nanos, status, plan_id)
               SELECT %s, 'subscription', %s, %s, %s, %s, included_credit_nanos, 'pending', id
                 FROM plans WHERE id = %s
               ON CONFLICT (stripe_invoice_id) DO NOTHING""",
            (account_id, invoice_id, subscription_id, amount,
             str(invoice.get("currency") or "usd").lower(), plan_id),
        )  # fmt: skip
        payment = payments.find(cur, "stripe_invoice_id", invoice_id)
        assert payment is not None
    elif payment.account_id != account_id:
        payments.log_mismatch(payment, "customer", event_id=event.id)
        return payment.account_id
    payments.settle(
        cur, payment, payment_intent_id=_intent_of(invoice), charge_id=ref(invoice.get("charge"))
    )
    return account_id


def invoice_failed(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`invoice.payment_failed`: tell the account (once per invoice); Stripe retries and
    the subscription's status follows in its own events."""
    invoice = event.object
    account_id = _account_of(cur, invoice.get("customer"))
    invoice_id = ref(invoice.get("id"))
    if account_id is None or invoice_id is None:
        return account_id
    payments.queue_failure(
        cur,
        account_id,
        dedupe=f"invoice:{invoice_id}",
        failure="Your plan's renewal failed.",
        amount_cents=int(invoice.get("amount_due") or 0) or None,
    )
    return account_id


def _account_of(cur: psycopg.Cursor[Any], customer: Any) -> str | None:
    customer_id = ref(customer)
    if customer_id is None:
        return None
    row = cur.execute(
        "SELECT id FROM accounts WHERE stripe_customer_id = %s", (customer_id,)
    ).fetchone()
    return str(row[0]) if row else None


def _plan_of(cur: psycopg.Cursor[Any], price_id: str | None) -> str | None:
    if price_id is None:
        return None
    row = cur.execute("SELECT id FROM plans WHERE stripe_price_id = %s", (price_id,)).fetchone()
    return str(row[0]) if row else None


def _first_item(sub: dict[str, Any]) -> dict[str, Any]:
    items = (sub.get("items") or {}).get("data") or [{}]
    return dict(items[0])


def _subscription_of(invoice: dict[str, Any]) -> str | None:
    """The invoice's subscription, where this API version or an older one puts it."""
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    return ref(details.get("subscription")) or ref(invoice.get("subscription"))


def _intent_of(invoice: dict[str, Any]) -> str | None:
    """The PaymentIntent that paid the invoice (so its refunds find the payment), where
    this API version (`payments`) or an older one (`payment_intent`) puts it."""
    for paid in (invoice.get("payments") or {}).get("data") or []:
        found = ref((paid.get("payment") or {}).get("payment_intent"))
        if found is not None:
            return found
    return ref(invoice.get("payment_intent"))


def _invoice_plan(
    cur: psycopg.Cursor[Any], invoice: dict[str, Any], subscription_id: str
) -> str | None:
    """The plan an invoice pays: its subscription's, or its first line's price's."""
    row = cur.execute(
        "SELECT plan_id FROM subscriptions WHERE stripe_subscription_id = %s", (subscription_id,)
    ).fetchone()
    if row is not None:
        return str(row[0])
    for line in (invoice.get("lines") or {}).get("data") or []:
        pricing = (line.get("pricing") or {}).get("price_details") or {}
        plan = _plan_of(cur, ref(pricing.get("price")) or ref(line.get("price")))
        if plan is not None:
            return plan
    return None
