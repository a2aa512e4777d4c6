"""Refunds and disputes from Stripe (docs/api.md, webhooks): they take back the credit
the refunded or disputed part of a payment bought, even when it was spent already (the
balance may go negative, and then blocks paid requests with 402 until it is settled).

`charge.refunded` carries the charge's cumulative `amount_refunded`, so the largest one
seen is the state; disputes add up by dispute id. A refund that comes before its
payment was known to be paid changes nothing yet: the grant nets it out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz.billing import credits, payments
from gatewayz.billing.webhook_event import ref
from gatewayz.email import outbox
from gatewayz.identity import audit

if TYPE_CHECKING:
    import psycopg

    from gatewayz.billing.webhook_event import Event


def charge_refunded(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`charge.refunded`: debit the credit the refunded cents bought."""
    charge = event.object
    return _reverse(cur, str(charge["id"]), ref(charge.get("payment_intent")), "refund")


def dispute_created(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`charge.dispute.created`: debit the credit the disputed cents bought."""
    dispute = event.object
    return _reverse(cur, ref(dispute.get("charge")), ref(dispute.get("payment_intent")), "dispute")


def _reverse(
    cur: psycopg.Cursor[Any], charge_id: str | None, intent_id: str | None, kind: str
) -> str | None:
    payment = payments.find(cur, "stripe_charge_id", charge_id) or payments.find(
        cur, "stripe_payment_intent_id", intent_id
    )
    if payment is None or not payment.paid:
        return payment.account_id if payment else None  # recorded; the grant nets it out
    refunded, disputed = payments.reported_reversals(cur, intent_id, charge_id)
    row = cur.execute(
        """UPDATE payments
              SET refunded_cents = LEAST(amount_cents - discount_cents,
                                         GREATEST(refunded_cents, %s)),
                  disputed_cents = GREATEST(disputed_cents, %s),
                  stripe_charge_id = COALESCE(stripe_charge_id, %s), updated_at = now()
            WHERE id = %s
        RETURNING refunded_cents, disputed_cents""",
        (refunded, disputed, charge_id, payment.id),
    ).fetchone()
    assert row is not None
    updated = payments.find(cur, "id", payment.id)
    assert updated is not None
    taken = payments.reconcile(cur, updated)
    if taken == 0:
        return payment.account_id
    audit.record(
        cur, action=f"payment.{kind}", target_type="payment", target_id=payment.id,
        account_id=payment.account_id, actor_kind="stripe",
        before={"refunded_cents": payment.refunded_cents,
                "disputed_cents": payment.disputed_cents,
                "reversed_nanos": payment.reversed_nanos},
        after={"refunded_cents": int(row[0]), "disputed_cents": int(row[1]),
               "reversed_nanos": payment.reversed_nanos + taken},
    )  # fmt: skip
    if kind == "refund":
        outbox.queue(
            cur, account_id=payment.account_id, template="refund",
            subject="Your refund", dedupe_key=f"refund:{payment.id}:{int(row[0])}",
            payload={"payment_id": payment.id, "credit_removed_nanos": taken,
                     "amount_nanos": (int(row[0]) - payment.refunded_cents)
                     * payments.NANOS_PER_CENT,
                     "balance_nanos": credits.balance_nanos(cur, payment.account_id)},
        )  # fmt: skip
    return payment.account_id
