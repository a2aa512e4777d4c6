"""The money invariant (DESIGN §4), for every account or one:
balance + active holds == sum(ledger)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
