"""The `hold_sweeper` job: the scheduled function, driven by its
EventBridge event (infra/events/scheduled/hold_sweeper.json), gives back the holds of
requests that never settled, and only those."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gatewayz import db
from gatewayz.billing import credits
from tests.factories import expire_hold, fund, new_hold, new_owner
from tests.functions.events import function
from tests.ledger import broken_accounts, invariant_holds
from tests.pg import ROOT

if TYPE_CHECKING:
    import psycopg

EVENT = ROOT / "infra" / "events" / "scheduled" / "hold_sweeper.json"


def sweep() -> dict[str, Any]:
    """Invoke the scheduled function's handler as EventBridge Scheduler would."""
    report: dict[str, Any] = function("scheduled").handler(json.loads(EVENT.read_text()), None)
    return report


def balances(conn: psycopg.Connection, *account_ids: str) -> list[int]:
    rows = conn.execute(
        "SELECT id::text, balance_nanos FROM accounts WHERE id = ANY(%s::uuid[])",
        (list(account_ids),),
    ).fetchall()
    found = dict(rows)
    return [found[account_id] for account_id in account_ids]


def live_holds(conn: psycopg.Connection, account_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT request_id FROM credit_holds WHERE account_id = %s ORDER BY request_id",
        (account_id,),
    ).fetchall()
    return [row[0] for row in rows]


def test_the_sweeper_releases_only_expired_holds_and_reports_them(
    conn: psycopg.Connection,
) -> None:
    sweep()  # whatever earlier tests left expired is not this test's business
    first, second = new_owner(), new_owner()
    fund(first.account_id, 10_000)
    fund(second.account_id, 10_000)
    crashed = [new_hold(first.account_id, 1_000), new_hold(first.account_id, 2_500)]
    crashed.append(new_hold(second.account_id, 700))
    in_flight = [new_hold(first.account_id, 400), new_hold(second.account_id, 900)]
    for stale in crashed:
        expire_hold(stale.request_id)
    before = balances(conn, first.account_id, second.account_id)
    assert before == [10_000 - 3_900, 10_000 - 1_600]
    assert invariant_holds(conn, first.account_id)

    report = sweep()

    assert report == {
        "job": "hold_sweeper",
        "status": "ok",
        "holds_released": len(crashed),
        "released_nanos": sum(h.amount_nanos for h in crashed),
        # None of them recorded progress: nothing to charge.
        "holds_charged": 0,
        "charged_nanos": 0,
        "uncollected_nanos": 0,
        "idempotency_records_deleted": 0,
    }
    # Each account gets back exactly its own expired holds; live ones stay held.
    assert balances(conn, first.account_id, second.account_id) == [
        before[0] + 1_000 + 2_500,
        before[1] + 700,
    ]
    assert live_holds(conn, first.account_id) == [in_flight[0].request_id]
    assert live_holds(conn, second.account_id) == [in_flight[1].request_id]
    assert invariant_holds(conn, first.account_id)
    assert invariant_holds(conn, second.account_id)

    # A request still in flight settles normally afterwards.
    db.run(
        credits.settle(
            in_flight[0],
            credits.UsageRecord(
                endpoint="chat.completions", model="mock/echo", status=200, cost_nanos=150
            ),
        )
    )
    assert balances(conn, first.account_id) == [10_000 - 150]
    assert invariant_holds(conn, first.account_id)


def test_a_second_run_releases_nothing(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 5_000)
    expire_hold(new_hold(owner.account_id, 1_200).request_id)
    first = sweep()
    assert first["holds_released"] >= 1
    after_first = balances(conn, owner.account_id)
    assert after_first == [5_000]

    again = sweep()

    assert (again["status"], again["holds_released"], again["released_nanos"]) == ("ok", 0, 0)
    assert balances(conn, owner.account_id) == after_first
    assert broken_accounts(conn) == []
