"""gatewayz.adb: the statements a request awaits, on the real PostgreSQL. Requests in
flight overlap on a few connections of their event loop, never more than its cap; a
connection whose statement failed or was cancelled is never reused; the connections of
an ended event loop are closed."""

from __future__ import annotations

import asyncio
import time

import pytest

from gatewayz import adb, db
from gatewayz.db import Query

pytestmark = pytest.mark.usefixtures("database_url")


def backend(sleep_s: float = 0.0) -> Query[int]:
    """The server process that ran the statement (one per connection)."""
    return Query(
        (("SELECT pg_backend_pid(), pg_sleep(%s)", (sleep_s,)),),
        lambda row: int(row[0]) if row else -1,
    )


def open_backends() -> set[int]:
    rows = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'gatewayz'"
        " AND pid <> pg_backend_pid() AND datname = current_database()"
    ).fetchall()
    return {int(r[0]) for r in rows}


def test_statements_in_flight_overlap_on_at_most_the_cap_of_connections() -> None:
    async def many() -> set[int]:
        pids = await asyncio.gather(*(adb.run(backend(0.02)) for _ in range(40)))
        return set(pids)

    pids = asyncio.run(many())
    # Overlapped (one connection would have run them one after the other), and bounded.
    assert 1 < len(pids) <= adb.MAX_CONNECTIONS


def test_a_started_statement_runs_on_the_server_before_the_loop_runs_again() -> None:
    """`start` sends the statement before it returns: the request works meanwhile (the
    rate-limit call is sent while the hold runs) without giving the loop a turn."""
    lock = Query((("SELECT pg_advisory_lock(%s)", (4711,)),), lambda row: row)

    async def scenario() -> bool:
        await adb.warm()  # a connection open, as a warm function has
        started = adb.start(lock)
        # Blocking here: the event loop does not run until the await below.
        taken = False
        for _ in range(200):
            if not db.execute("SELECT pg_try_advisory_lock(4711)").fetchone()[0]:
                taken = True
                break
            db.execute("SELECT pg_advisory_unlock(4711)")
            time.sleep(0.01)  # noqa: ASYNC251 - blocking on purpose: the loop must not run
        await started
        await adb.run(Query((("SELECT pg_advisory_unlock(%s)", (4711,)),), lambda row: row))
        return taken

    assert asyncio.run(scenario())


def test_one_request_at_a_time_keeps_one_connection() -> None:
    async def one_by_one() -> set[int]:
        return {await adb.run(backend()) for _ in range(20)}

    assert len(asyncio.run(one_by_one())) == 1


def test_a_failed_statement_leaves_its_connection_unused_and_the_next_one_works() -> None:
    async def scenario() -> tuple[int, int]:
        first = await adb.run(backend())
        with pytest.raises(Exception, match="division by zero"):
            await adb.run(Query((("SELECT 1 / 0", ()),), lambda row: row))
        return first, await adb.run(backend())

    first, after = asyncio.run(scenario())
    assert after != first
    assert first not in open_backends()  # closed, not left for the server to time out


def test_a_cancelled_statement_leaves_its_connection_unused() -> None:
    async def scenario() -> tuple[int, int]:
        first = await adb.run(backend())
        slow = asyncio.ensure_future(adb.run(backend(5)))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        return first, await adb.run(backend())

    first, after = asyncio.run(scenario())
    assert after != first
    assert first not in open_backends()


def test_an_ended_event_loop_s_connections_are_closed_when_the_next_one_starts() -> None:
    first = asyncio.run(adb.run(backend()))
    assert first in open_backends()  # idle, for that loop's next request
    second = asyncio.run(adb.run(backend()))
    assert second != first
    assert first not in open_backends()


def test_resetting_the_database_closes_the_idle_connections() -> None:
    pid = asyncio.run(adb.run(backend()))
    assert pid in open_backends()
    db.reset()
    assert pid not in open_backends()
    assert adb.connections() == []


# A single `%s` statement is sent through libpq directly (adb._execute); the rest take a
# cursor. Either way a caller sees what a psycopg cursor gives.

TYPED = (
    "SELECT %s::uuid, %s::bigint, %s::text, %s::boolean, %s::numeric, NULL::text,"
    " %s::timestamptz, %s::jsonb, 'it''s'::text"
)
TYPED_PARAMS = (
    "7d9f4a52-2b4c-4f1e-9a0e-1c2d3e4f5a6b",
    9_007_199_254_740_993,  # beyond a float's exact integers
    "naïve ✓",
    True,
    "0.000000001",
    "2026-12-03T08:00:00+00:00",
    '{"a": [1, 2]}',
)


def first_row(sql: str, params: object) -> Query[tuple[object, ...] | None]:
    return Query(((sql, params),), lambda row: row)


def test_a_statement_s_row_has_the_types_a_cursor_gives() -> None:
    query = first_row(TYPED, TYPED_PARAMS)
    awaited = asyncio.run(adb.run(query))
    assert awaited == db.run(query)
    assert awaited is not None
    assert [type(v).__name__ for v in awaited] == [
        "UUID", "int", "str", "bool", "Decimal", "NoneType", "datetime", "dict", "str"
    ]  # fmt: skip


def test_python_values_are_sent_as_a_cursor_sends_them() -> None:
    # An int is sent typed by its size (`pg_typeof` of the parameter says which), a str
    # untyped for the server to infer, None as NULL.
    query = first_row(
        "SELECT pg_typeof(%s)::text, pg_typeof(%s)::text, %s || '', %s::int IS NULL",
        (1, 2**40, "x", None),
    )
    row = asyncio.run(adb.run(query))
    assert row == db.run(query)
    assert row == ("smallint", "bigint", "x", True)


def test_no_row_reads_as_none() -> None:
    assert asyncio.run(adb.run(first_row("SELECT 1 WHERE %s", (False,)))) is None


def test_errors_are_psycopg_s_own_classes() -> None:
    import psycopg

    with pytest.raises(psycopg.errors.DivisionByZero):
        asyncio.run(adb.run(first_row("SELECT 1 / %s", (0,))))
    with pytest.raises(psycopg.errors.RaiseException, match="no such hold"):
        asyncio.run(adb.run(first_row("DO $$ BEGIN RAISE EXCEPTION 'no such hold'; END $$", ())))
    with pytest.raises(psycopg.ProgrammingError):
        asyncio.run(adb.run(first_row("SELECT %s, %s", (1,))))


def test_a_statement_larger_than_the_socket_takes_is_sent_whole() -> None:
    text = "x" * 3_000_000
    query = first_row("SELECT length(%s), md5(%s)", (text, text))
    assert asyncio.run(adb.run(query)) == db.run(query)


def test_named_parameters_and_percent_signs_take_the_cursor_and_work() -> None:
    named = first_row("SELECT %(a)s::int + 1", {"a": 41})
    assert asyncio.run(adb.run(named)) == (42,)
    percent = first_row("SELECT 'a%%b', %s::int", (7,))
    assert asyncio.run(adb.run(percent)) == ("a%b", 7)


def test_a_connection_whose_server_went_away_fails_once_and_is_replaced() -> None:
    import psycopg

    async def scenario() -> tuple[int, int]:
        first = await adb.run(backend())
        db.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone()
        with pytest.raises(psycopg.OperationalError):
            await adb.run(backend())
        return first, await adb.run(backend())

    first, after = asyncio.run(scenario())
    assert after != first
    assert after in open_backends()


def test_a_server_that_goes_away_while_its_connection_is_idle_costs_no_statement() -> None:
    # The idle connection's socket stays registered with the loop: the server's goodbye
    # is read as it comes, and the connection closes itself before anyone uses it.
    async def scenario() -> tuple[int, int]:
        first = await adb.run(backend())
        db.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone()
        for _ in range(100):  # until the loop has read the goodbye
            if not adb.connections():
                break
            await asyncio.sleep(0.01)
        assert adb.connections() == []
        return first, await adb.run(backend())

    first, after = asyncio.run(scenario())
    assert after != first


def test_what_comes_to_an_idle_connection_is_read_while_it_is_idle() -> None:
    # A notification arrives while nobody waits: read at once, or the loop would be
    # woken for the same unread bytes again and again.
    async def scenario() -> str | None:
        await adb.run(first_row("LISTEN gatewayz_adb_test", ()))
        (conn,) = adb.connections()
        db.execute("NOTIFY gatewayz_adb_test, 'hello'")
        for _ in range(100):
            notify = conn.pgconn.notifies()
            if notify is not None:
                return notify.extra.decode()
            await asyncio.sleep(0.01)
        return None

    assert asyncio.run(scenario()) == "hello"


def test_a_statement_through_the_cursor_hands_the_socket_back() -> None:
    # psycopg's cursor waits with its own reader on the same socket; afterwards the
    # connection's statements are woken by the connection's reader again.
    async def scenario() -> tuple[tuple[object, ...] | None, int]:
        named = await adb.run(first_row("SELECT %(a)s::int", {"a": 1}))
        waited = await asyncio.wait_for(adb.run(backend(0.05)), timeout=10)
        return named, waited

    named, pid = asyncio.run(scenario())
    assert named == (1,)
    assert pid > 0
