"""`credits.release`: a hold given back whole, for a request refused before any provider
was called: the balance regains it, no ledger entry, no usage row, and only once."""

from __future__ import annotations

import pytest

from gatewayz import db
from gatewayz.billing import credits
from tests import ledger
from tests.factories import fund, new_hold, new_owner

pytestmark = pytest.mark.usefixtures("database_url")
USD = 1_000_000_000


def state(account_id: str) -> tuple[int, int, int, int]:
    row = db.execute(
        """SELECT balance_nanos,
                  (SELECT count(*) FROM credit_holds WHERE account_id = a.id),
                  (SELECT count(*) FROM credit_transactions WHERE account_id = a.id),
                  (SELECT count(*) FROM usage_records WHERE account_id = a.id)
             FROM accounts a WHERE id = %s""",
        (account_id,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def test_a_released_hold_is_back_in_the_balance_without_a_ledger_entry() -> None:
    owner = new_owner()
    fund(owner.account_id, 2 * USD)
    before = state(owner.account_id)
    kept = new_hold(owner.account_id, USD // 4)
    hold = new_hold(owner.account_id, USD // 2)
    assert state(owner.account_id)[:2] == (before[0] - USD // 4 - USD // 2, 2)
    assert credits.release(hold)
    assert state(owner.account_id) == (before[0] - USD // 4, 1, before[2], before[3])
    assert ledger.invariant_holds(db.connection(), owner.account_id)
    # Once only: a second release (or one after settling) changes nothing.
    assert not credits.release(hold)
    assert state(owner.account_id) == (before[0] - USD // 4, 1, before[2], before[3])
    assert credits.release(kept)
    assert state(owner.account_id) == before


def test_releasing_another_accounts_hold_by_its_request_id_does_nothing() -> None:
    owner, other = new_owner(), new_owner()
    fund(owner.account_id, USD)
    hold = new_hold(owner.account_id, USD // 2)
    forged = credits.Hold(hold.request_id, other.account_id, None, hold.amount_nanos)
    assert not credits.release(forged)
    assert state(owner.account_id)[:2] == (USD // 2, 1)
    assert state(other.account_id)[0] == 0
    assert credits.release(hold)
