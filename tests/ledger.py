"""The money invariant, for every account or one:
balance + active holds == sum(ledger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import psycopg

_BROKEN = """
SELECT a.id FROM accounts a
 WHERE a.balance_nanos
       + COALESCE((SELECT sum(h.amount_nanos) FROM credit_holds h WHERE h.account_id = a.id), 0)
    <> COALESCE((SELECT sum(t.amount_nanos) FROM credit_transactions t
                  WHERE t.account_id = a.id), 0)
"""


def broken_accounts(conn: psycopg.Connection) -> list[str]:
    """Accounts whose balance and holds do not add up to their ledger."""
    return [str(row[0]) for row in conn.execute(_BROKEN).fetchall()]


def invariant_holds(conn: psycopg.Connection, account_id: str) -> bool:
    return account_id not in broken_accounts(conn)


# Accounts whose tests force a cost above the hold on purpose (a provider that ignores the
# output cap), and so maybe an uncollected one; anywhere else neither may happen.
_EXPECTED_OVERRUN: set[str] = set()


def expect_overrun(account_id: str) -> None:
    """Mark `account_id` as one whose test forces a cost above its hold."""
    _EXPECTED_OVERRUN.add(account_id)


def unexpected_uncollected(conn: psycopg.Connection) -> list[str]:
    """Requests with an uncollected cost outside the accounts expected to have one."""
    rows = conn.execute(
        "SELECT request_id, account_id::text FROM usage_records WHERE uncollected_nanos > 0"
    ).fetchall()
    return [r for r, account in rows if account not in _EXPECTED_OVERRUN]


def free_output(conn: psycopg.Connection) -> list[str]:
    """Requests that produced output and cost nothing (every served model is priced)."""
    rows = conn.execute(
        """SELECT request_id FROM usage_records
            WHERE output_tokens + reasoning_tokens > 0 AND cost_nanos = 0"""
    ).fetchall()
    return [str(r[0]) for r in rows]


def overrun_holds(conn: psycopg.Connection) -> list[str]:
    """Requests that cost more than they held (the hold did not bound the provider),
    outside the accounts whose tests force it."""
    rows = conn.execute(
        """SELECT request_id, account_id::text FROM usage_records
            WHERE held_nanos IS NOT NULL AND cost_nanos > held_nanos"""
    ).fetchall()
    return [r for r, account in rows if account not in _EXPECTED_OVERRUN]


class Footprint(NamedTuple):
    """What an account's money looks like: a request refused before any provider was
    called must leave all four as it found them."""

    balance: int
    holds: int
    entries: int
    usage_rows: int


def footprint(conn: psycopg.Connection, account_id: str) -> Footprint:
    row = conn.execute(
        """SELECT balance_nanos,
                  (SELECT count(*) FROM credit_holds WHERE account_id = a.id),
                  (SELECT count(*) FROM credit_transactions WHERE account_id = a.id),
                  (SELECT count(*) FROM usage_records WHERE account_id = a.id)
             FROM accounts a WHERE id = %s""",
        (account_id,),
    ).fetchone()
    assert row is not None
    return Footprint(*(int(value) for value in row))
