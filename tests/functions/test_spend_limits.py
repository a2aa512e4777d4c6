"""The account's monthly spending limit (infra/migrations/0019) through the real chat
handler: a request that cannot fit is a 402 naming the limit, a new UTC month starts
from 0, parallel requests never hold past it together, and a negative balance (a
refund after the credit was spent) blocks paid requests."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.billing import credits
from gatewayz.billing.pricing import Usage
from tests import ledger
from tests.factories import expire_hold, fund, new_hold, new_key, new_owner
from tests.functions.billing_api import call, chat

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")
USD = 1_000_000_000
LAST_MONTH = "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day'"


def month(conn: psycopg.Connection, account_id: str) -> tuple[int, bool]:
    """(month_spent_nanos, whether month_spent_since is this UTC month's start)."""
    row = conn.execute(
        """SELECT month_spent_nanos, month_spent_since
                  = date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
             FROM accounts WHERE id = %s""",
        (account_id,),
    ).fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


def spent(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(sum(cost_nanos), 0) FROM usage_records WHERE account_id = %s",
        (account_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_reached_limit_is_a_402_naming_it_and_a_new_month_resets_it(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    key = new_key(owner)
    fund(owner.account_id, 20 * USD)
    assert call("PATCH", "/v1/billing/settings", key.secret,
                {"monthly_spend_limit": "2.5"}).status == 200  # fmt: skip
    assert chat(key.secret).status == 200
    assert month(conn, owner.account_id) == (spent(conn, owner.account_id), True)
    conn.execute("UPDATE accounts SET month_spent_nanos = %s WHERE id = %s",
                 (int(2.5 * USD), owner.account_id))  # fmt: skip
    refused = chat(key.secret)
    assert (refused.status, refused.code) == (402, "insufficient_credits")
    error = refused.body["error"]
    assert error["metadata"]["limit_source"] == "credits"
    assert "$2.50" in error["message"]
    assert "/v1/billing/settings" in error["message"]
    # What was spent last month does not count this month.
    conn.execute(f"UPDATE accounts SET month_spent_since = {LAST_MONTH} WHERE id = %s",
                 (owner.account_id,))  # fmt: skip
    credits_now = call("GET", "/v1/credits", key.secret).body["data"]
    assert credits_now["month_spent"] == 0
    before = spent(conn, owner.account_id)
    assert chat(key.secret).status == 200
    assert month(conn, owner.account_id) == (spent(conn, owner.account_id) - before, True)
    # Raising the limit lets requests through at once.
    conn.execute("UPDATE accounts SET month_spent_nanos = %s WHERE id = %s",
                 (int(2.5 * USD), owner.account_id))  # fmt: skip
    assert chat(key.secret).status == 402
    call("PATCH", "/v1/billing/settings", key.secret, {"monthly_spend_limit": 3})
    assert chat(key.secret).status == 200
    assert ledger.invariant_holds(conn, owner.account_id)


def test_parallel_requests_never_hold_past_the_limit(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 50 * USD)
    conn.execute(
        "UPDATE accounts SET monthly_spend_limit_nanos = %s, month_spent_nanos = %s WHERE id = %s",
        (10 * USD, 3 * USD, owner.account_id),
    )
    start = threading.Barrier(12)
    outcomes: list[Any] = []

    def reserve() -> None:
        start.wait()
        outcomes.append(db.run(credits.reserve(
            account_id=owner.account_id, api_key_id=None, request_id=f"req_{uuid.uuid4().hex}",
            max_nanos=2 * USD, min_nanos=USD // 2, ttl_s=300, concurrency=None,
            key_concurrency=None)))  # fmt: skip
        db.close()

    threads = [threading.Thread(target=reserve) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    holds = [o for o in outcomes if isinstance(o, credits.Hold)]
    refusals = {o.reason for o in outcomes if isinstance(o, credits.Refusal)}
    # 7 dollars are left this month: 3 full holds, one of 1, then nothing fits.
    assert sum(h.amount_nanos for h in holds) == 7 * USD
    assert sorted(h.amount_nanos for h in holds) == [USD, 2 * USD, 2 * USD, 2 * USD]
    assert refusals == {"in_flight"}  # the month's room is held, not yet spent
    # Each settles at its whole hold: the month is spent to the dollar, and then the
    # limit itself refuses.
    for hold in holds:
        record = credits.UsageRecord(endpoint="chat.completions", model="test/x", status=200,
                                     cost_nanos=hold.amount_nanos,
                                     usage=Usage(output_tokens=1))  # fmt: skip
        db.run(credits.settle(hold, record))
    assert month(conn, owner.account_id) == (10 * USD, True)
    late = db.run(credits.reserve(account_id=owner.account_id, api_key_id=None,
                           request_id=f"req_{uuid.uuid4().hex}", max_nanos=USD, min_nanos=1,
                           ttl_s=300, concurrency=None, key_concurrency=None))  # fmt: skip
    assert late == credits.Refusal("spend_limit")
    assert ledger.invariant_holds(conn, owner.account_id)


def test_what_the_sweeper_charges_counts_in_the_month(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 5 * USD)
    conn.execute(f"UPDATE accounts SET month_spent_nanos = 99, month_spent_since = {LAST_MONTH}"
                 " WHERE id = %s", (owner.account_id,))  # fmt: skip
    hold = new_hold(owner.account_id, 1_000_000)
    progress = credits.UsageRecord(endpoint="chat.completions", model="test/x", status=200,
                                   cost_nanos=600_000, usage=Usage(output_tokens=6))  # fmt: skip
    assert credits.record_progress(hold, progress)
    expire_hold(hold.request_id)
    credits.release_expired_holds()
    assert month(conn, owner.account_id) == (600_000, True)
    assert ledger.invariant_holds(conn, owner.account_id)


def test_a_negative_balance_refuses_paid_requests(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    fund(owner.account_id, USD)
    assert chat(key.secret).status == 200
    # A refund of credit already spent: the balance goes below zero.
    with db.transaction() as cur:
        credits.post(cur, account_id=owner.account_id, kind="refund", amount_nanos=-USD,
                     external_ref=f"test-refund-{uuid.uuid4()}", allow_negative=True)  # fmt: skip
    refused = chat(key.secret)
    assert (refused.status, refused.code) == (402, "insufficient_credits")
    assert refused.body["error"]["metadata"]["limit_source"] == "credits"
    assert call("GET", "/v1/credits", key.secret).body["data"]["balance"] < 0
    # A request that costs nothing (a free model's hold is 0) still passes.
    free = db.run(credits.reserve(account_id=owner.account_id, api_key_id=None,
                           request_id=f"req_{uuid.uuid4().hex}", max_nanos=0, min_nanos=0,
                           ttl_s=300, concurrency=None, key_concurrency=None))  # fmt: skip
    assert isinstance(free, credits.Hold)
    assert free.amount_nanos == 0
    nothing = credits.UsageRecord(endpoint="chat.completions", model="test/free", status=200)
    assert db.run(credits.settle(free, nothing)).charged_nanos == 0
    assert ledger.invariant_holds(conn, owner.account_id)


def test_a_request_served_with_the_accounts_own_key_counts_its_fee(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, USD)
    hold = new_hold(owner.account_id, 50_000)
    byok = credits.UsageRecord(endpoint="chat.completions", model="test/x", status=200,
                               cost_nanos=1_500, usage=Usage(output_tokens=9),
                               upstream_cost_nanos=30_000)  # fmt: skip
    assert db.run(credits.settle(hold, byok)).charged_nanos == 1_500
    assert month(conn, owner.account_id) == (1_500, True)
