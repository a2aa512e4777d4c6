"""Referral rewards (docs/api.md, referrals): granted in the transaction of the purchase
grant that pays them, once.

The Stripe webhook that grants a referred account's purchase (`billing.payments.settle`)
calls `on_paid` with it. The first credit purchase whose paid amount (what the card was
charged, after any discount, less refunds already reported) reaches
`REFERRAL_MIN_PURCHASE_USD` decides the referral: it is voided, with its reason, when the
purchase was paid with the referrer's card or Stripe customer, when the two users came to
share an account, when the referrer's account is not active, or when the referrer reached
a cap (`REFERRAL_MAX_REWARDS`, `REFERRAL_MAX_REWARD_USD`); otherwise both sides get their
reward as `referral` ledger entries whose references are unique per referral and side, so
a replayed or concurrent webhook never grants twice. A smaller purchase leaves it pending.

A rewarded purchase later refunded in full or disputed takes both rewards back
(`on_reversed`), as refunds and disputes take back the credit they bought.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import config
from gatewayz.billing import credits, money
from gatewayz.identity import audit
from gatewayz.record import record

if TYPE_CHECKING:
    import psycopg

# Payment kinds whose grant is a purchase (a subscription's invoice is not).
QUALIFYING_KINDS = frozenset({"credit_purchase", "auto_topup"})
NANOS_PER_CENT = money.NANOS_PER_USD // 100


@record
class Purchase:
    """A paid payment as the reward rules see it."""

    payment_id: str
    account_id: str
    kind: str
    paid_cents: int  # charged less refunds and disputes already reported
    card_fingerprint: str | None = None
    customer_id: str | None = None


@record
class _Referral:
    id: str
    referrer_account_id: str
    referrer_user_id: str | None
    referred_user_id: str | None


def on_paid(cur: psycopg.Cursor[Any], purchase: Purchase) -> str | None:
    """Decide the pending referral of the purchase's account, if this purchase qualifies:
    the referral's new status (`rewarded` or `void`), or None when nothing changed."""
    if purchase.kind not in QUALIFYING_KINDS:
        return None
    row = cur.execute(
        """SELECT id, referrer_account_id, referrer_user_id, referred_user_id FROM referrals
            WHERE referred_account_id = %s AND status = 'pending' FOR UPDATE""",
        (purchase.account_id,),
    ).fetchone()
    settings = config.get_settings()
    minimum = money.usd_to_nanos(settings.referral_min_purchase_usd)
    if row is None or purchase.paid_cents * NANOS_PER_CENT < minimum:
        return None
    referral = _Referral(*(None if value is None else str(value) for value in row))  # type: ignore[arg-type]
    reason = _farming(cur, referral, purchase) or _capped(cur, referral)
    if reason is not None:
        _void(cur, referral, purchase, reason)
        return "void"
    _grant(cur, referral, purchase)
    return "rewarded"


def _farming(cur: psycopg.Cursor[Any], referral: _Referral, purchase: Purchase) -> str | None:
    """Why the purchase looks like the referrer paying for their own referral, if it does.
    Locks the referrer's account, so grants to one referrer count their caps in turn."""
    row = cur.execute(
        """WITH theirs AS (SELECT account_id FROM memberships WHERE user_id = %(referrer)s
                           UNION SELECT %(account)s::uuid)
           SELECT a.status,
                  EXISTS (SELECT 1 FROM memberships m JOIN theirs USING (account_id)
                           WHERE m.user_id = %(referred)s),
                  %(customer)s::text IS NOT NULL AND (
                      EXISTS (SELECT 1 FROM accounts c JOIN theirs t ON t.account_id = c.id
                               WHERE c.stripe_customer_id = %(customer)s)
                      OR EXISTS (SELECT 1 FROM payments p JOIN theirs USING (account_id)
                                  WHERE p.stripe_customer_id = %(customer)s)),
                  %(card)s::text IS NOT NULL AND EXISTS (
                      SELECT 1 FROM payments p JOIN theirs USING (account_id)
                       WHERE p.card_fingerprint = %(card)s AND p.paid_at IS NOT NULL)
             FROM accounts a WHERE a.id = %(account)s FOR UPDATE OF a""",
        {
            "referrer": referral.referrer_user_id,
            "referred": referral.referred_user_id,
            "account": referral.referrer_account_id,
            "customer": purchase.customer_id,
            "card": purchase.card_fingerprint,
        },
    ).fetchone()
    assert row is not None
    status, shared, same_customer, same_card = row
    if status != "active":
        return "referrer_inactive"
    if shared:
        return "same_account"
    if same_customer:
        return "same_stripe_customer"
    if same_card:
        return "same_card"
    return None


def _capped(cur: psycopg.Cursor[Any], referral: _Referral) -> str | None:
    """Which of the referrer's caps this reward would pass, if any."""
    settings = config.get_settings()
    row = cur.execute(
        """SELECT count(*), COALESCE(sum(reward_nanos), 0) FROM referrals
            WHERE referrer_account_id = %s AND status = 'rewarded'""",
        (referral.referrer_account_id,),
    ).fetchone()
    assert row is not None
    if int(row[0]) >= settings.referral_max_rewards:
        return "referrer_cap_count"
    reward = money.usd_to_nanos(settings.referral_referrer_reward_usd)
    if int(row[1]) + reward > money.usd_to_nanos(settings.referral_max_reward_usd):
        return "referrer_cap_total"
    return None


def _void(cur: psycopg.Cursor[Any], referral: _Referral, purchase: Purchase, reason: str) -> None:
    cur.execute(
        """UPDATE referrals SET status = 'void', void_reason = %s, voided_at = now(),
                                payment_id = %s
            WHERE id = %s""",
        (reason, purchase.payment_id, referral.id),
    )
    for account_id in (referral.referrer_account_id, purchase.account_id):
        audit.record(
            cur, action="referral.void", target_type="referral", target_id=referral.id,
            account_id=account_id, actor_kind="stripe",
            after={"status": "void", "reason": reason, "payment_id": purchase.payment_id},
        )  # fmt: skip


def _grant(cur: psycopg.Cursor[Any], referral: _Referral, purchase: Purchase) -> None:
    settings = config.get_settings()
    sides = (
        ("referrer", referral.referrer_account_id, settings.referral_referrer_reward_usd),
        ("referred", purchase.account_id, settings.referral_referred_reward_usd),
    )
    amounts = {side: money.usd_to_nanos(usd) for side, _, usd in sides}
    for side, account_id, _ in sides:
        if amounts[side] > 0:
            credits.post(
                cur, account_id=account_id, kind="referral", amount_nanos=amounts[side],
                external_ref=f"referral:{referral.id}:{side}", description="Referral reward",
                metadata={"referral_id": referral.id, "payment_id": purchase.payment_id},
            )  # fmt: skip
        audit.record(
            cur, action="referral.reward", target_type="referral", target_id=referral.id,
            account_id=account_id, actor_kind="stripe",
            after={"side": side, "reward_nanos": amounts[side],
                   "payment_id": purchase.payment_id},
        )  # fmt: skip
    cur.execute(
        """UPDATE referrals SET status = 'rewarded', rewarded_at = now(), reward_nanos = %s,
                                referred_reward_nanos = %s, payment_id = %s
            WHERE id = %s""",
        (amounts["referrer"], amounts["referred"], purchase.payment_id, referral.id),
    )


def on_reversed(cur: psycopg.Cursor[Any], payment_id: str, kind: str) -> bool:
    """Take back both rewards of the referral `payment_id` paid, now that the payment was
    refunded in full (`kind` `refund`) or disputed (`dispute`); False when it paid none
    or they were taken back already. Like the purchase's own credit, a reward already
    spent may leave the balance below zero."""
    row = cur.execute(
        """SELECT id, referrer_account_id, referred_account_id, reward_nanos,
                  referred_reward_nanos
             FROM referrals WHERE payment_id = %s AND status = 'rewarded' FOR UPDATE""",
        (payment_id,),
    ).fetchone()
    if row is None:
        return False
    referral_id = str(row[0])
    for side, account_id, amount in (("referrer", row[1], row[3]), ("referred", row[2], row[4])):
        if amount > 0:
            credits.post(
                cur, account_id=str(account_id), kind=kind, amount_nanos=-int(amount),
                external_ref=f"referral:{referral_id}:{side}:reversed", allow_negative=True,
                description="Referral reward taken back: its purchase was refunded",
                metadata={"referral_id": referral_id, "payment_id": payment_id},
            )  # fmt: skip
        audit.record(
            cur, action="referral.reverse", target_type="referral", target_id=referral_id,
            account_id=str(account_id), actor_kind="stripe",
            after={"side": side, "reward_nanos": -int(amount), "payment_id": payment_id},
        )  # fmt: skip
    cur.execute(
        "UPDATE referrals SET status = 'reversed', reversed_at = now() WHERE id = %s",
        (referral_id,),
    )
    return True
