"""A percent coupon in the Stripe checkout (docs/api.md, coupons).

Redeeming a percent coupon attaches it to the account (one at a time). The next checkout
for credit (`amount` or `pack`) claims it: the payment row gets `coupon_id` and
`discount_cents`, Stripe is asked for the price less the discount, and the webhook still
grants the full credit (and checks Stripe charged exactly the discounted price). When that
payment is made the redemption is `consumed`; if the checkout expires or fails, the coupon
stays attached for the next one. A new checkout takes the coupon over from an unfinished
one by expiring that one's Stripe session first, so it can never be paid at the discount
too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing import payments
from gatewayz.identity import audit
from gatewayz.logs import get_logger
from gatewayz.record import record

if TYPE_CHECKING:
    import psycopg

# Stripe's smallest charge in USD: a discount never takes the price below it.
STRIPE_MIN_CENTS = 50
# A checkout row that never got its Stripe session (the function died before) holds the
# coupon no longer than this.
_HOLDER = """
SELECT p.id, p.stripe_checkout_session_id FROM payments p
 WHERE p.id = %s AND p.status = 'pending'
   AND (p.stripe_checkout_session_id IS NOT NULL
        OR (p.failure_message IS NULL AND p.created_at > now() - interval '1 hour'))
"""


@record
class Discount:
    """The attached coupon a checkout claimed, and what it takes off the price."""

    redemption_id: str
    coupon_id: str
    code: str
    percent_off: int
    cents: int

    def shown(self) -> dict[str, Any]:
        """As the checkout's answer shows it."""
        return {"code": self.code, "percent_off": self.percent_off, "discount": self.cents / 100}


def free_attached(account_id: str) -> None:
    """Before a credit checkout: if the account's attached coupon is on an unfinished
    checkout whose Stripe session is open, expire that session so the new checkout can
    take the coupon. A session Stripe will not expire (it is being paid) keeps it."""
    row = db.execute(
        """SELECT p.id, p.stripe_checkout_session_id
             FROM coupon_redemptions r JOIN payments p ON p.id = r.payment_id
            WHERE r.account_id = %s AND r.status = 'attached' AND p.status = 'pending'
              AND p.stripe_checkout_session_id IS NOT NULL""",
        (account_id,),
    ).fetchone()
    if row is None:
        return
    import stripe

    from gatewayz.billing import stripe_client

    try:
        stripe_client.client().v1.checkout.sessions.expire(str(row[1]))
    except (stripe.StripeError, errors.MissingConfiguration) as exc:
        get_logger().info(
            "checkout keeps its coupon", extra={"payment_id": str(row[0]), "error": str(exc)}
        )
        return
    with db.transaction() as cur:
        payment = payments.find(cur, "id", str(row[0]))
        if payment is not None and payment.status == "pending":
            payments.mark(cur, payment, "expired")


def claim(
    cur: psycopg.Cursor[Any], account_id: str, payment_id: str, amount_cents: int
) -> Discount | None:
    """Put the account's attached coupon on the new checkout `payment_id` (its row gets
    `coupon_id` and `discount_cents`); None when there is none, or another unfinished
    checkout still holds it."""
    row = cur.execute(
        """SELECT r.id, r.coupon_id, c.code, r.percent_off, r.payment_id
             FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id
            WHERE r.account_id = %s AND r.status = 'attached'
              FOR UPDATE OF r""",
        (account_id,),
    ).fetchone()
    # A statement of its own, after the lock: it sees a holder committed meanwhile.
    if row is None or (row[4] is not None and cur.execute(_HOLDER, (row[4],)).fetchone()):
        return None
    cents = min(amount_cents * int(row[3]) // 100, amount_cents - STRIPE_MIN_CENTS)
    if cents <= 0:
        return None
    found = Discount(str(row[0]), str(row[1]), str(row[2]), int(row[3]), cents)
    cur.execute(
        "UPDATE coupon_redemptions SET payment_id = %s WHERE id = %s",
        (payment_id, found.redemption_id),
    )
    cur.execute(
        "UPDATE payments SET coupon_id = %s, discount_cents = %s WHERE id = %s",
        (found.coupon_id, cents, payment_id),
    )
    return found


def consume(cur: psycopg.Cursor[Any], payment: payments.Payment) -> None:
    """The checkout `payment` was paid: the coupon it carried is used up (once)."""
    row = cur.execute(
        """UPDATE coupon_redemptions SET status = 'consumed', consumed_at = now()
            WHERE payment_id = %s AND status = 'attached'
        RETURNING id, coupon_id""",
        (payment.id,),
    ).fetchone()
    if row is None:
        return
    audit.record(
        cur, action="coupon.consume", target_type="coupon", target_id=str(row[1]),
        account_id=payment.account_id, actor_kind="stripe",
        after={"redemption_id": str(row[0]), "payment_id": payment.id,
               "discount_cents": payment.discount_cents},
    )  # fmt: skip
