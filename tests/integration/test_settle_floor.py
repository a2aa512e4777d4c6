"""Settling never takes a balance below zero, a dead stream's recorded progress is
charged by the sweeper, and a swept request is never charged twice (gatewayz/billing/credits.py,
infra/migrations/0011)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz import db
from gatewayz.billing import credits
from gatewayz.billing.pricing import Usage
from tests import ledger
from tests.factories import expire_hold, fund, new_hold, new_key, new_owner
from tests.ledger import invariant_holds

if TYPE_CHECKING:
    import psycopg


def record(cost: int, *, output: int = 0, fee: int = 0) -> credits.UsageRecord:
    return credits.UsageRecord(
        endpoint="chat.completions",
        model="test/echo",
        status=200,
        cost_nanos=cost,
        fee_nanos=fee,
        provider="openrouter",
        provider_model="openrouter/echo",
        usage=Usage(input_tokens=10, output_tokens=output),
    )


def balance(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,))
    return int(row.fetchone()[0])  # type: ignore[index]


def usage_row(conn: psycopg.Connection, request_id: str) -> tuple[object, ...]:
    row = conn.execute(
        """SELECT cost_nanos, uncollected_nanos, fee_nanos, status, error_code, output_tokens,
                  usage_estimated
             FROM usage_records WHERE request_id = %s""",
        (request_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def debits(conn: psycopg.Connection, account_id: str) -> list[int]:
    rows = conn.execute(
        "SELECT amount_nanos FROM credit_transactions WHERE account_id = %s AND kind = 'usage'"
        " ORDER BY id",
        (account_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def test_a_cost_above_the_hold_is_charged_up_to_the_balance_and_the_rest_recorded(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 5_000)  # exactly the hold
    key = new_key(owner)
    hold = new_hold(owner.account_id, 5_000, key_id=key.id)
    ledger.expect_overrun(owner.account_id)

    settled = db.run(credits.settle(hold, record(12_000, output=600)))

    assert (settled.charged_nanos, settled.uncollected_nanos) == (5_000, 7_000)
    assert settled.balance_after_nanos == 0 == balance(conn, owner.account_id)
    assert usage_row(conn, hold.request_id)[:2] == (12_000, 7_000)
    assert debits(conn, owner.account_id) == [-5_000]
    spent = conn.execute("SELECT spent_nanos FROM api_keys WHERE id = %s", (key.id,)).fetchone()
    assert spent == (5_000,)
    assert invariant_holds(conn, owner.account_id)


def test_a_cost_above_the_hold_takes_what_else_the_balance_has_first(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 8_000)
    hold = new_hold(owner.account_id, 5_000)
    ledger.expect_overrun(owner.account_id)

    settled = db.run(credits.settle(hold, record(6_500)))

    assert (settled.charged_nanos, settled.uncollected_nanos) == (6_500, 0)
    assert balance(conn, owner.account_id) == 1_500
    assert invariant_holds(conn, owner.account_id)


def test_progress_is_noted_on_the_hold_and_charged_by_the_sweeper_when_the_stream_died(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 10_000)
    key = new_key(owner)
    hold = new_hold(owner.account_id, 6_000, key_id=key.id)
    assert credits.record_progress(hold, record(1_000, output=40))
    assert credits.record_progress(hold, record(2_500, output=95, fee=300))  # the latest counts
    expire_hold(hold.request_id)

    report = credits.release_expired_holds()

    assert report["holds_charged"] >= 1
    assert balance(conn, owner.account_id) == 10_000 - 2_500
    assert usage_row(conn, hold.request_id) == (2_500, 0, 300, 200, "interrupted", 95, True)
    assert debits(conn, owner.account_id) == [-2_500]
    spent = conn.execute("SELECT spent_nanos FROM api_keys WHERE id = %s", (key.id,)).fetchone()
    assert spent == (2_500,)
    assert invariant_holds(conn, owner.account_id)


def test_a_late_settlement_of_a_swept_stream_charges_only_what_is_still_due(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 10_000)
    hold = new_hold(owner.account_id, 6_000)
    credits.record_progress(hold, record(2_000, output=80))
    expire_hold(hold.request_id)
    credits.release_expired_holds()

    settled = db.run(credits.settle(hold, record(3_000, output=120)))

    assert (settled.charged_nanos, settled.uncollected_nanos) == (1_000, 0)
    assert balance(conn, owner.account_id) == 10_000 - 3_000
    assert debits(conn, owner.account_id) == [-2_000, -1_000]
    assert usage_row(conn, hold.request_id)[:2] == (3_000, 0)
    # Settled again, it finds nothing more to charge.
    assert db.run(credits.settle(hold, record(3_000, output=120))).charged_nanos == 0
    assert balance(conn, owner.account_id) == 7_000
    assert invariant_holds(conn, owner.account_id)


def test_the_sweeper_never_charges_more_than_the_hold_and_the_balance(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 4_000)
    hold = new_hold(owner.account_id, 4_000)
    credits.record_progress(hold, record(9_000, output=400))
    expire_hold(hold.request_id)
    ledger.expect_overrun(owner.account_id)

    credits.release_expired_holds()

    assert balance(conn, owner.account_id) == 0
    assert usage_row(conn, hold.request_id)[:2] == (9_000, 5_000)
    assert invariant_holds(conn, owner.account_id)


def test_progress_on_a_settled_hold_is_refused() -> None:
    owner = new_owner()
    fund(owner.account_id, 1_000)
    hold = new_hold(owner.account_id, 1_000)
    db.run(credits.settle(hold, record(100)))
    assert credits.record_progress(hold, record(200, output=5)) is False
