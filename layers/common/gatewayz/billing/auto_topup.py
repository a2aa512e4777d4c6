"""Auto top-up (docs/operations.md, jobs): the `auto_topup` job charges an account's saved
card once when its balance fell below the threshold it set, never in the request path.

Each crossing is claimed in one statement (the account is disarmed and a pending
`auto_topup` payment written; a unique index allows one pending per account), so two
runs at once make one claim. The PaymentIntent is created with the payment's id as
Stripe's idempotency key: a run that crashed after claiming is finished by the next one
with the same key, and Stripe answers with the same PaymentIntent. A declined card fails
the payment and is not tried again until the balance is back at or above the threshold,
which re-arms the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db
from gatewayz.billing import money, payments, stripe_client
from gatewayz.billing.webhook_event import ref
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    import psycopg

BATCH = 100
NANOS_PER_CENT = money.NANOS_PER_USD // 100

_REARM = """
UPDATE accounts a SET auto_topup_armed = true
 WHERE NOT a.auto_topup_armed AND a.auto_topup_threshold_nanos IS NOT NULL
   AND a.balance_nanos >= a.auto_topup_threshold_nanos
   AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.account_id = a.id
                      AND p.kind = 'auto_topup' AND p.status = 'pending')
"""

_CLAIM = """
WITH due AS (
    SELECT id FROM accounts
     WHERE auto_topup_threshold_nanos IS NOT NULL AND auto_topup_armed
       AND balance_nanos < auto_topup_threshold_nanos AND status = 'active'
       AND stripe_customer_id IS NOT NULL AND stripe_payment_method_id IS NOT NULL
     LIMIT %(batch)s FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE accounts a SET auto_topup_armed = false FROM due WHERE a.id = due.id
    RETURNING a.id, a.auto_topup_amount_cents
)
INSERT INTO payments (account_id, kind, amount_cents, currency, credit_nanos, status)
SELECT id, 'auto_topup', auto_topup_amount_cents, 'usd',
       auto_topup_amount_cents * %(per_cent)s, 'pending'
  FROM claimed
ON CONFLICT (account_id) WHERE kind = 'auto_topup' AND status = 'pending' DO NOTHING
RETURNING id
"""

# Claimed top-ups with no PaymentIntent yet: just claimed, or left by a run that died.
_UNSENT = """
SELECT p.id, p.account_id, p.amount_cents, p.currency, a.stripe_customer_id,
       a.stripe_payment_method_id
  FROM payments p JOIN accounts a ON a.id = p.account_id
 WHERE p.kind = 'auto_topup' AND p.status = 'pending' AND p.stripe_payment_intent_id IS NULL
 ORDER BY p.created_at LIMIT %s
"""


def run() -> dict[str, Any]:
    """The `auto_topup` job: re-arm recovered accounts, claim new crossings, charge them."""
    report = {"rearmed": rearm(), "claimed": len(claim()), "succeeded": 0, "failed": 0}
    report["pending"] = 0
    for row in db.execute(_UNSENT, (BATCH,)).fetchall():
        outcome = charge(str(row[0]), str(row[1]), int(row[2]), str(row[3]), row[4], row[5])
        report[outcome] += 1
    return report


def rearm() -> int:
    """Arm again the accounts whose balance is back at or above their threshold."""
    return int(db.execute(_REARM).rowcount)


def claim() -> list[str]:
    """Claim the crossings not claimed yet (one statement): the new payments' ids."""
    rows = db.execute(_CLAIM, {"batch": BATCH, "per_cent": NANOS_PER_CENT}).fetchall()
    return [str(row[0]) for row in rows]


def charge(
    payment_id: str,
    account_id: str,
    cents: int,
    currency: str,
    customer_id: str | None,
    method_id: str | None,
) -> str:
    """Create the off-session PaymentIntent of one claimed top-up and record what Stripe
    answered: `succeeded`, `failed` or `pending` (the webhook finishes it)."""
    import stripe

    metadata = {"payment_id": payment_id, "account_id": account_id, "kind": "auto_topup"}
    try:
        intent = stripe_client.client().v1.payment_intents.create(
            {"amount": cents, "currency": currency, "customer": customer_id or "",
             "payment_method": method_id or "", "off_session": True, "confirm": True,
             "description": "Gatewayz auto top-up", "metadata": metadata},
            {"idempotency_key": f"gatewayz-auto-topup-{payment_id}"},
        )  # fmt: skip
    except stripe.CardError as exc:
        body: dict[str, Any] = exc.json_body if isinstance(exc.json_body, dict) else {}
        found = ref((body.get("error") or {}).get("payment_intent"))
        return _failed(payment_id, found, exc.user_message or "Card declined.")
    except stripe.StripeError as exc:
        # Stripe could not be reached: the next run retries with the same key.
        get_logger().warning(
            "auto top-up not sent", extra={"payment_id": payment_id, "error": type(exc).__name__}
        )
        return "pending"
    return _record(payment_id, intent)


def _record(payment_id: str, answer: Any) -> str:
    intent: dict[str, Any] = answer.to_dict()
    intent_id = str(intent["id"])
    with db.transaction() as cur:
        payment = _attach(cur, payment_id, intent_id)
        if payment is None or payment.status != "pending":
            # The webhook (or a concurrent run) recorded it first.
            return _outcome(payment)
        if intent["status"] == "succeeded":
            payments.settle(
                cur, payment, payment_intent_id=intent_id,
                charge_id=ref(intent.get("latest_charge")),
                payment_method_id=ref(intent.get("payment_method")),
            )  # fmt: skip
            return "succeeded"
        if intent["status"] in ("requires_payment_method", "canceled", "requires_action"):
            error = intent.get("last_payment_error") or {}
            payments.mark(
                cur, payment, "failed",
                failure=error.get("message") or "The card needs the customer's action.",
            )  # fmt: skip
            return "failed"
    return "pending"


def _outcome(payment: payments.Payment | None) -> str:
    if payment is not None and payment.paid:
        return "succeeded"
    if payment is not None and payment.status == "failed":
        return "failed"
    return "pending"


def _failed(payment_id: str, intent_id: str | None, message: str) -> str:
    with db.transaction() as cur:
        payment = _attach(cur, payment_id, intent_id)
        if payment is not None and payment.status == "pending":
            payments.mark(cur, payment, "failed", failure=message)
    return "failed"


def _attach(
    cur: psycopg.Cursor[Any], payment_id: str, intent_id: str | None
) -> payments.Payment | None:
    """The top-up, locked; while pending, with its PaymentIntent's id saved on it."""
    payment = payments.find(cur, "id", payment_id)
    if payment is None or payment.status != "pending":
        return payment
    if intent_id is not None and payment.payment_intent_id is None:
        cur.execute(
            "UPDATE payments SET stripe_payment_intent_id = %s WHERE id = %s",
            (intent_id, payment_id),
        )
    return payment
