"""The account's Stripe customer (docs/api.md, billing): one per account, made on its
first checkout.

Two checkouts racing make one customer: Stripe's idempotency key is derived from the
account id, and only the first id is stored (`WHERE stripe_customer_id IS NULL`).
"""

from __future__ import annotations

from gatewayz import db, errors
from gatewayz.billing import stripe_client


def existing(account_id: str) -> str | None:
    """The account's Stripe customer id, if it has one."""
    row = db.execute(
        "SELECT stripe_customer_id FROM accounts WHERE id = %s", (account_id,)
    ).fetchone()
    return str(row[0]) if row is not None and row[0] is not None else None


def ensure(account_id: str) -> str:
    """The account's Stripe customer id, created at Stripe on first use.

    Raises:
        MissingConfiguration: `STRIPE_SECRET_KEY` is unset.
        UpstreamError: Stripe refused or could not be reached.
    """
    found = existing(account_id)
    if found is not None:
        return found
    import stripe

    row = db.execute(
        """SELECT a.name, u.email FROM accounts a
             LEFT JOIN memberships m ON m.account_id = a.id AND m.role = 'owner'
             LEFT JOIN users u ON u.id = m.user_id
            WHERE a.id = %s""",
        (account_id,),
    ).fetchone()
    assert row is not None
    params: dict[str, object] = {"name": row[0], "metadata": {"account_id": account_id}}
    if row[1]:
        params["email"] = row[1]
    try:
        customer = stripe_client.client().v1.customers.create(
            params,  # type: ignore[arg-type]
            {"idempotency_key": f"gatewayz-customer-{account_id}"},
        )
    except stripe.StripeError as exc:
        raise upstream(exc) from None
    db.execute(
        """UPDATE accounts SET stripe_customer_id = %s
            WHERE id = %s AND stripe_customer_id IS NULL""",
        (customer.id, account_id),
    )
    stored = existing(account_id)
    assert stored is not None
    return stored


def upstream(exc: Exception) -> errors.UpstreamError:
    """The error a client sees when Stripe failed (never Stripe's own message body)."""
    from gatewayz.logs import get_logger

    get_logger().error("stripe call failed", extra={"error": type(exc).__name__})
    return errors.UpstreamError("Stripe could not be reached or refused the request; try again.")
