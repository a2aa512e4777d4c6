"""Accounts and their people (docs/architecture.md, money): a personal account per user,
owned by them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gatewayz.billing import credits

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True, slots=True)
class Owner:
    """A user and the personal account they own."""

    user_id: str
    account_id: str


def create_personal(
    cur: psycopg.Cursor[Any],
    *,
    email: str,
    display_name: str | None = None,
    plan_id: str = "trial",
    is_admin: bool = False,
    auth_user_id: str | None = None,
) -> Owner:
    """Create a user with a personal account on `plan_id`; a trial plan starts the trial.

    The caller owns the transaction. Raises psycopg.errors.UniqueViolation if the e-mail
    is taken.
    """
    user = cur.execute(
        """INSERT INTO users (email, display_name, is_admin, auth_user_id)
           VALUES (%s, %s, %s, %s) RETURNING id""",
        (email, display_name, is_admin, auth_user_id),
    ).fetchone()
    account = cur.execute(
        """INSERT INTO accounts (kind, name, plan_id) VALUES ('personal', %s, %s) RETURNING id""",
        (display_name or email, plan_id),
    ).fetchone()
    assert user is not None
    assert account is not None
    owner = Owner(user_id=str(user[0]), account_id=str(account[0]))
    cur.execute(
        "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'owner')",
        (owner.account_id, owner.user_id),
    )
    start_trial(cur, owner.account_id)
    return owner


def start_trial(cur: psycopg.Cursor[Any], account_id: str) -> bool:
    """Start the trial of an account on a trial plan: dates and the trial credit.

    Returns False when the account is not on a trial plan or already had its trial
    (the ledger reference `trial:<account>` is unique, so this can never pay twice).
    """
    row = cur.execute(
        """UPDATE accounts a
              SET trial_started_at = now(),
                  trial_ends_at = now() + make_interval(days => p.trial_days)
             FROM plans p
            WHERE a.id = %s AND p.id = a.plan_id AND p.kind = 'trial' AND a.trial_started_at IS NULL
        RETURNING p.included_credit_nanos""",
        (account_id,),
    ).fetchone()
    if row is None:
        return False
    if row[0] > 0:
        credits.post(
            cur,
            account_id=account_id,
            kind="trial",
            amount_nanos=int(row[0]),
            external_ref=f"trial:{account_id}",
            description="Trial credit",
        )
    return True
