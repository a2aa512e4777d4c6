"""Payments (docs/architecture.md, money): what each Stripe payment granted, and what
refunds and disputes took back.

A `payments` row is written with the credit it grants before the customer pays; Stripe's
events only say that it was paid, refunded or disputed. Every change here compares the
state Stripe reports with the row and posts the difference to the ledger, under a
reference unique to that state, so events may come in any order and any number of times.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from gatewayz.billing import credits, money
from gatewayz.email import outbox
from gatewayz.identity import audit
from gatewayz.logs import get_logger
from gatewayz.record import record
from gatewayz.referrals import rewards

if TYPE_CHECKING:
    from datetime import datetime

    import psycopg

_COLUMNS = """id, account_id, kind, status, amount_cents, discount_cents, currency,
credit_nanos, refunded_cents, disputed_cents, granted_nanos, reversed_nanos, paid_at,
stripe_checkout_session_id, stripe_payment_intent_id, stripe_charge_id,
stripe_invoice_id, plan_id"""
# Columns a payment may be looked up by (never a client's metadata alone).
NANOS_PER_CENT = money.NANOS_PER_USD // 100
LOOKUPS = frozenset(
    {
        "id",
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "stripe_charge_id",
        "stripe_invoice_id",
    }
)


@record
class Payment:
    """One `payments` row."""

    id: str
    account_id: str
    kind: str
    status: str
    amount_cents: int
    discount_cents: int
    currency: str
    credit_nanos: int
    refunded_cents: int
    disputed_cents: int
    granted_nanos: int
    reversed_nanos: int
    paid_at: datetime | None
    checkout_session_id: str | None
    payment_intent_id: str | None
    charge_id: str | None
    invoice_id: str | None
    plan_id: str | None

    @property
    def charged_cents(self) -> int:
        """What Stripe was asked to charge: the price less any discount."""
        return self.amount_cents - self.discount_cents

    @property
    def paid(self) -> bool:
        return self.paid_at is not None


def find(cur: psycopg.Cursor[Any], column: str, value: str | None) -> Payment | None:
    """The payment whose `column` is `value`, locked until the transaction ends."""
    if column not in LOOKUPS:
        raise ValueError(f"payments cannot be looked up by {column}")
    if not value or (column == "id" and not _is_uuid(value)):
        return None
    row = cur.execute(
        f"SELECT {_COLUMNS} FROM payments WHERE {column} = %s FOR UPDATE", (value,)
    ).fetchone()
    if row is None:
        return None
    return _payment(row)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _payment(row: tuple[Any, ...]) -> Payment:
    payment_id, account_id, *rest = row
    return Payment(str(payment_id), str(account_id), *rest)


def settle(
    cur: psycopg.Cursor[Any],
    payment: Payment,
    *,
    payment_intent_id: str | None,
    charge_id: str | None = None,
    payment_method_id: str | None = None,
    card_fingerprint: str | None = None,
    customer_id: str | None = None,
) -> bool:
    """Record `payment` as paid: grant its credit once (and decide a referral it
    qualifies), net out refunds and disputes Stripe reported before this, save the card,
    end a trial, queue the receipt. False when it was paid already (nothing changes)."""
    if payment.paid:
        return False
    refunded, disputed = reported_reversals(cur, payment_intent_id, charge_id)
    row = cur.execute(
        f"""UPDATE payments
               SET paid_at = now(), granted_nanos = credit_nanos,
                   stripe_payment_intent_id = COALESCE(stripe_payment_intent_id, %s),
                   stripe_charge_id = COALESCE(stripe_charge_id, %s),
                   card_fingerprint = COALESCE(card_fingerprint, %s),
                   stripe_customer_id = COALESCE(stripe_customer_id, %s),
                   refunded_cents = LEAST(amount_cents - discount_cents,
                                          GREATEST(refunded_cents, %s)),
                   disputed_cents = GREATEST(disputed_cents, %s),
                   status = 'succeeded', failure_message = NULL, updated_at = now()
             WHERE id = %s
         RETURNING {_COLUMNS}""",
        (
            payment_intent_id,
            charge_id,
            card_fingerprint,
            customer_id,
            refunded,
            disputed,
            payment.id,
        ),
    ).fetchone()
    assert row is not None
    paid = _payment(row)
    kind = "subscription" if paid.kind == "subscription" else "purchase"
    ref = f"invoice:{paid.invoice_id}" if paid.kind == "subscription" else f"payment:{paid.id}"
    if paid.credit_nanos > 0:
        credits.post(
            cur, account_id=paid.account_id, kind=kind, amount_nanos=paid.credit_nanos,
            external_ref=ref, description=_description(paid), metadata={"payment_id": paid.id},
        )  # fmt: skip
    rewards.on_paid(cur, rewards.Purchase(
        paid.id, paid.account_id, paid.kind,
        paid.charged_cents - paid.refunded_cents - paid.disputed_cents,
        card_fingerprint=card_fingerprint, customer_id=customer_id,
    ))  # fmt: skip
    if payment_method_id is not None and paid.kind != "subscription":
        cur.execute(
            "UPDATE accounts SET stripe_payment_method_id = %s WHERE id = %s",
            (payment_method_id, paid.account_id),
        )
    left = upgrade_on_payment(cur, paid.account_id)
    audit.record(
        cur, action="payment.succeeded", target_type="payment", target_id=paid.id,
        account_id=paid.account_id, actor_kind="stripe",
        after={"amount_cents": paid.charged_cents, "credit_nanos": paid.credit_nanos,
               "kind": paid.kind, "plan_left": left},
    )  # fmt: skip
    reconcile(cur, paid)
    outbox.queue(
        cur, account_id=paid.account_id, template="payment_received",
        subject="Payment received: thank you", dedupe_key=f"payment_received:{paid.id}",
        payload={"payment_id": paid.id, "amount_nanos": paid.charged_cents * NANOS_PER_CENT,
                 "credit_nanos": paid.credit_nanos, "description": _description(paid),
                 "balance_nanos": credits.balance_nanos(cur, paid.account_id)},
    )  # fmt: skip
    return True


def reconcile(cur: psycopg.Cursor[Any], payment: Payment) -> int:
    """Take back the credit that refunds and disputes of a paid payment cover and that
    was not taken yet; the nanos debited (0 when nothing changed or it was not paid)."""
    if not payment.paid or payment.charged_cents <= 0:
        return 0
    refund_share = _share(payment, payment.refunded_cents)
    total_share = _share(payment, payment.refunded_cents + payment.disputed_cents)
    taken = 0
    reversed_nanos = payment.reversed_nanos
    steps = (
        ("refund", refund_share, f"refund:{payment.id}:{payment.refunded_cents}"),
        ("dispute", total_share, f"dispute:{payment.id}:{payment.disputed_cents}"),
    )
    for kind, target, ref in steps:
        if target <= reversed_nanos:
            continue
        credits.post(
            cur, account_id=payment.account_id, kind=kind,
            amount_nanos=-(target - reversed_nanos), external_ref=ref, allow_negative=True,
            description=f"{kind.capitalize()} of payment {payment.id}",
            metadata={"payment_id": payment.id},
        )  # fmt: skip
        taken += target - reversed_nanos
        reversed_nanos = target
    status = _status(payment)
    cur.execute(
        """UPDATE payments SET reversed_nanos = %s, status = %s, updated_at = now()
            WHERE id = %s""",
        (reversed_nanos, status, payment.id),
    )
    if status in ("refunded", "disputed"):  # the referral rewards it paid go back too
        rewards.on_reversed(cur, payment.id, "dispute" if status == "disputed" else "refund")
    return taken


def mark(
    cur: psycopg.Cursor[Any], payment: Payment, status: str, *, failure: str | None = None
) -> bool:
    """End an unpaid payment as `failed`, `expired` or `canceled`; False when it was paid
    already or had ended so (a late or repeated event changes nothing)."""
    if payment.paid or payment.status == status:
        return False
    cur.execute(
        """UPDATE payments SET status = %s, failure_message = %s, updated_at = now()
            WHERE id = %s""",
        (status, failure, payment.id),
    )
    audit.record(
        cur, action=f"payment.{status}", target_type="payment", target_id=payment.id,
        account_id=payment.account_id, actor_kind="stripe",
        after={"status": status, "failure_message": failure},
    )  # fmt: skip
    if status == "failed":
        queue_failure(
            cur, payment.account_id, dedupe=f"payment:{payment.id}", failure=failure,
            amount_cents=payment.charged_cents,
        )  # fmt: skip
    return True


def queue_failure(
    cur: psycopg.Cursor[Any],
    account_id: str,
    *,
    dedupe: str,
    failure: str | None,
    amount_cents: int | None = None,
) -> None:
    """Queue the `payment_failed` notice, once per `dedupe`."""
    payload: dict[str, Any] = {"reason": failure or "The card was declined."}
    if amount_cents is not None:
        payload["amount_nanos"] = amount_cents * NANOS_PER_CENT
    outbox.queue(
        cur, account_id=account_id, template="payment_failed", payload=payload,
        subject="Your payment did not go through", dedupe_key=f"payment_failed:{dedupe}",
    )  # fmt: skip


def upgrade_on_payment(cur: psycopg.Cursor[Any], account_id: str) -> str | None:
    """Move an account that paid off the trial or free plan to `payg` at once (a trial
    ends, keeping its credit: `trial_converted_at`); the plan it left, or None."""
    row = cur.execute(
        """UPDATE accounts a SET plan_id = 'payg', updated_at = now(),
                  trial_converted_at = CASE WHEN p.kind = 'trial' THEN now()
                                            ELSE a.trial_converted_at END
             FROM plans p
            WHERE a.id = %s AND p.id = a.plan_id AND p.kind IN ('trial', 'free')
        RETURNING p.id""",
        (account_id,),
    ).fetchone()
    return str(row[0]) if row is not None else None


def reported_reversals(
    cur: psycopg.Cursor[Any], payment_intent_id: str | None, charge_id: str | None = None
) -> tuple[int, int]:
    """Refunded and disputed cents of a charge, from the events recorded for it: the
    largest cumulative refund, and the sum of its disputes (each counted once). Events
    that came before their payment was known are counted when it is."""
    if payment_intent_id is None and charge_id is None:
        return 0, 0
    row = cur.execute(
        """WITH events AS (
               SELECT type, payload #> '{data,object}' AS obj FROM stripe_events
                WHERE type IN ('charge.refunded', 'charge.dispute.created')
                  AND (payload #>> '{data,object,payment_intent}' = %(pi)s
                       OR payload #>> '{data,object,charge}' = %(charge)s
                       OR (type = 'charge.refunded'
                           AND payload #>> '{data,object,id}' = %(charge)s)))
           SELECT COALESCE((SELECT max((obj ->> 'amount_refunded')::bigint) FROM events
                             WHERE type = 'charge.refunded'), 0),
                  COALESCE((SELECT sum(amount) FROM (
                               SELECT DISTINCT ON (obj ->> 'id') (obj ->> 'amount')::bigint
                                      AS amount
                                 FROM events WHERE type = 'charge.dispute.created') d), 0)""",
        {"pi": payment_intent_id, "charge": charge_id},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _share(payment: Payment, cents: int) -> int:
    """The credit `cents` of the charge bought, rounded up (never taking back less)."""
    cents = min(max(cents, 0), payment.charged_cents)
    return -((-payment.credit_nanos * cents) // payment.charged_cents)


def _status(payment: Payment) -> str:
    if payment.disputed_cents > 0:
        return "disputed"
    if payment.refunded_cents >= payment.charged_cents:
        return "refunded"
    if payment.refunded_cents > 0:
        return "partially_refunded"
    return "succeeded"


def _description(payment: Payment) -> str:
    if payment.kind == "subscription":
        return f"Plan {payment.plan_id}: monthly credit"
    if payment.kind == "auto_topup":
        return "Auto top-up"
    return "Credit purchase"


def cents_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def log_mismatch(payment: Payment, reason: str, **details: Any) -> None:
    """Log a Stripe object that does not match our row (no credit is granted for it)."""
    get_logger().error(
        "stripe payment mismatch",
        extra={"payment_id": payment.id, "reason": reason, **details},
    )
