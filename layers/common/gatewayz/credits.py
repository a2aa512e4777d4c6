"""Credits (DESIGN §4): every balance change is one atomic SQL step with a ledger entry.

Grants and debits go through the `ledger_post` SQL function (infra/migrations/0003),
which moves the balance and appends the entry together, and refuses a second entry
for the same external reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

GRANT_KINDS = frozenset({"trial", "purchase", "subscription", "coupon", "referral", "admin_grant"})
DEBIT_KINDS = frozenset({"usage", "refund", "dispute", "admin_debit"})
INSUFFICIENT_FUNDS = "GW402"  # the SQLSTATE ledger_post raises


class InsufficientFunds(Exception):
    """A debit would take the balance below zero."""


def post(
    cur: psycopg.Cursor[Any],
    *,
    account_id: str,
    kind: str,
    amount_nanos: int,
    external_ref: str | None = None,
    idempotency_key: str | None = None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    actor_user_id: str | None = None,
    allow_negative: bool = False,
) -> int | None:
    """Post a ledger entry (positive for grants, negative for debits).

    Returns the entry id, or None when `external_ref` was already posted (a replay).

    Raises:
        ValueError: the sign does not fit the kind.
        InsufficientFunds: a debit exceeds the balance (the transaction is aborted).
    """
    if (kind in GRANT_KINDS and amount_nanos <= 0) or (kind in DEBIT_KINDS and amount_nanos >= 0):
        raise ValueError(f"a {kind} entry cannot be {amount_nanos} nanos")
    if kind not in GRANT_KINDS | DEBIT_KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    import psycopg
    from psycopg.types.json import Jsonb

    params = (
        account_id,
        kind,
        amount_nanos,
        external_ref,
        idempotency_key,
        description,
        Jsonb(metadata or {}),
        actor_user_id,
        allow_negative,
    )
    try:
        row = cur.execute(
            "SELECT ledger_post(%s, %s, %s, %s, %s, %s, %s, %s, %s)", params
        ).fetchone()
    except psycopg.Error as exc:
        if exc.sqlstate == INSUFFICIENT_FUNDS:
            raise InsufficientFunds(f"{account_id} cannot cover {-amount_nanos} nanos") from None
        raise
    return None if row is None or row[0] is None else int(row[0])


def balance_nanos(cur: psycopg.Cursor[Any], account_id: str) -> int:
    """The spendable balance (holds excluded)."""
    row = cur.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    if row is None:
        raise LookupError(f"no account {account_id}")
    return int(row[0])
