"""What the client-suite tests share: the billing checks each test makes (the offline
gateway they call is the `offline` fixture of tests/e2e/conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz import db

if TYPE_CHECKING:
    from tests.e2e.conftest import Account


def recorded_costs(account: Account) -> list[int]:
    """The cost of each request the account was billed for, oldest first."""
    rows = db.execute(
        "SELECT cost_nanos FROM usage_records WHERE account_id = %s ORDER BY created_at",
        (account.account_id,),
    )
    return [int(cost) for (cost,) in rows.fetchall()]


def nanos(dollars: float) -> int:
    return round(dollars * 1e9)
