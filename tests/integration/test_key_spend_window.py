"""A key's spending limit with `limit_reset` (infra/migrations/0015): the limit counts what
the key spent in the current UTC day, week (from Monday) or month; a new window starts
from nothing, both for reserving and for settling."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from gatewayz import db
from gatewayz.billing import credits
from tests.factories import fund, new_hold, new_key, new_owner
from tests.functions.keys_api import call

if TYPE_CHECKING:
    import psycopg

    from gatewayz.identity.accounts import Owner

pytestmark = pytest.mark.usefixtures("database_url")
USD = 1_000_000_000


def spend(owner: Owner, key_id: str, nanos: int) -> None:
    hold = new_hold(owner.account_id, nanos, key_id=key_id)
    db.run(credits.settle(hold, credits.UsageRecord(endpoint="chat", model="m", status=200,
                                             cost_nanos=nanos)))  # fmt: skip


def reserve(owner: Owner, key_id: str, nanos: int) -> credits.Hold | credits.Refusal:
    result = db.run(credits.reserve(account_id=owner.account_id, api_key_id=key_id,
                             request_id=f"req_{uuid.uuid4().hex}", max_nanos=nanos,
                             min_nanos=nanos, ttl_s=60, concurrency=None,
                             key_concurrency=None))  # fmt: skip
    if isinstance(result, credits.Hold):
        db.run(credits.settle(result, credits.UsageRecord(endpoint="chat", model="m", status=200)))
    return result


def a_day_passes(conn: psycopg.Connection, key_id: str) -> None:
    """The key's count is from yesterday: as if the day had turned since it last spent."""
    conn.execute("UPDATE api_keys SET spent_since = spent_since - interval '1 day' "
                 "WHERE id = %s", (key_id,))  # fmt: skip


@pytest.mark.parametrize(
    ("at", "day", "week", "month"),
    [
        ("2026-12-02 10:00+00", "2026-12-02", "2026-11-30", "2026-12-01"),
        # 23:30 on Sunday in Los Angeles is Monday in UTC.
        ("2026-12-06 23:30-08", "2026-12-07", "2026-12-07", "2026-12-01"),
        ("2027-01-01 00:00+00", "2027-01-01", "2026-12-28", "2027-01-01"),
    ],
)
def test_windows_start_on_utc_calendar_boundaries(
    conn: psycopg.Connection, at: str, day: str, week: str, month: str
) -> None:
    conn.execute("SET TimeZone = 'America/Los_Angeles'")
    row = conn.execute(
        """SELECT key_limit_window_start('daily', %s::timestamptz),
                  key_limit_window_start('weekly', %s::timestamptz),
                  key_limit_window_start('monthly', %s::timestamptz),
                  key_limit_window_start(NULL, %s::timestamptz)""",
        (at, at, at, at),
    ).fetchone()
    assert row is not None
    expected = [datetime.fromisoformat(d).replace(tzinfo=UTC) for d in (day, week, month)]
    assert list(row[:3]) == expected
    assert row[3] is None


def test_a_daily_limit_refuses_within_the_day_and_starts_afresh_the_next(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 10 * USD)
    key = new_key(owner, spend_limit_nanos=USD, limit_reset="daily")
    spend(owner, key.id, 900_000_000)
    refused = reserve(owner, key.id, 200_000_000)
    assert refused == credits.Refusal("key_limit")
    a_day_passes(conn, key.id)
    assert isinstance(reserve(owner, key.id, 200_000_000), credits.Hold)
    spend(owner, key.id, 300_000_000)
    row = conn.execute(
        "SELECT spent_nanos, spent_since = key_limit_window_start('daily', now()) "
        "FROM api_keys WHERE id = %s",
        (key.id,),
    ).fetchone()
    assert row == (300_000_000, True)  # yesterday's 0.9 is not counted


def test_without_a_reset_the_limit_counts_for_ever(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 10 * USD)
    key = new_key(owner, spend_limit_nanos=USD)
    spend(owner, key.id, 900_000_000)
    a_day_passes(conn, key.id)
    assert reserve(owner, key.id, 200_000_000) == credits.Refusal("key_limit")
    spend(owner, key.id, 50_000_000)
    row = conn.execute("SELECT spent_nanos FROM api_keys WHERE id = %s", (key.id,)).fetchone()
    assert row == (950_000_000,)


def test_setting_a_reset_recounts_the_current_window_from_usage(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 10 * USD)
    caller = new_key(owner)
    key = new_key(owner, spend_limit_nanos=2 * USD)
    spend(owner, key.id, 400_000_000)
    spend(owner, key.id, 600_000_000)
    # One of the two was last month, as far as the usage rows tell.
    conn.execute(
        "UPDATE usage_records SET created_at = date_trunc('month', now(), 'UTC') - interval '1 day'"
        " WHERE api_key_id = %s AND cost_nanos = 400000000",
        (key.id,),
    )
    reply = call("PATCH", f"/v1/keys/{key.id}", caller.secret, {"limit_reset": "monthly"})
    assert reply.status == 200, reply.raw
    assert (reply.body["data"]["limit_remaining"], reply.body["data"]["usage_monthly"]) == (
        1.4,
        0.6,
    )
    assert reply.body["data"]["usage"] == 1.0
    back = call("PATCH", f"/v1/keys/{key.id}", caller.secret, {"limit_reset": None})
    assert back.body["data"]["limit_remaining"] == 1.0


def test_window_helpers_are_inlined_into_the_statement_calling_them(
    conn: psycopg.Connection,
) -> None:
    """Inlined, their body is planned with the caller's statement, not again on every call
    (each `reserve_credits` of a key calls one: infra/migrations/0028)."""
    plan = "\n".join(
        row[0]
        for row in conn.execute(
            "EXPLAIN VERBOSE SELECT key_spent_in_window(k.spent_nanos, k.spent_since,"
            " k.limit_reset) FROM api_keys k"
        )
    )
    assert "CASE" in plan
    assert "key_spent_in_window" not in plan
    assert "key_limit_window_start" not in plan


def test_the_window_trigger_fires_only_for_keys_with_a_reset(conn: psycopg.Connection) -> None:
    """Settling a key without `limit_reset` calls no trigger function (0028's WHEN)."""
    row = conn.execute(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'api_keys_spend_window'"
    ).fetchone()
    assert row is not None
    assert "WHEN (((new.limit_reset IS NOT NULL)" in row[0]
