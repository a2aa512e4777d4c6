"""Holding and settling a request's credits (gatewayz/billing/credits.py `reserve`/`settle`,
the SQL functions of infra/migrations/0010)."""

from __future__ import annotations

import random
import threading
import uuid
from typing import TYPE_CHECKING

from gatewayz import db
from gatewayz.billing import credits
from tests.factories import expire_hold, fund, new_key, new_owner
from tests.ledger import invariant_holds

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

    from gatewayz.identity.accounts import Owner

TTL_S = 300


def reserve(
    owner: Owner,
    max_nanos: int,
    min_nanos: int = 1,
    *,
    key_id: str | None = None,
    concurrency: int | None = None,
    key_concurrency: int | None = None,
) -> credits.Hold | credits.Refusal:
    return db.run(
        credits.reserve(
            account_id=owner.account_id,
            api_key_id=key_id,
            request_id=f"req_{uuid.uuid4().hex}",
            max_nanos=max_nanos,
            min_nanos=min_nanos,
            ttl_s=TTL_S,
            concurrency=concurrency,
            key_concurrency=key_concurrency,
        )
    )


def hold_of(result: credits.Hold | credits.Refusal) -> credits.Hold:
    assert isinstance(result, credits.Hold), result
    return result


def record(cost_nanos: int) -> credits.UsageRecord:
    return credits.UsageRecord(
        endpoint="chat.completions", model="mock/echo", status=200, cost_nanos=cost_nanos
    )


def balance(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,))
    return int(row.fetchone()[0])  # type: ignore[index]


def usage_entries(conn: psycopg.Connection, account_id: str) -> list[tuple]:
    return conn.execute(
        """SELECT amount_nanos, balance_after_nanos, usage_record_id, api_key_id
             FROM credit_transactions WHERE account_id = %s AND kind = 'usage' ORDER BY id""",
        (account_id,),
    ).fetchall()


def holds_of(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute("SELECT count(*) FROM credit_holds WHERE account_id = %s", (account_id,))
    return int(row.fetchone()[0])  # type: ignore[index]


# --- reserve and settle ------------------------------------------------------------------


def test_settle_charges_the_cost_releases_the_rest_and_records_it(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    key = new_key(owner)
    fund(owner.account_id, 10_000)
    hold = hold_of(reserve(owner, 4_000, key_id=key.id))
    assert hold.amount_nanos == 4_000
    assert balance(conn, owner.account_id) == 6_000
    assert invariant_holds(conn, owner.account_id)

    settled = db.run(credits.settle(hold, record(1_234)))

    assert balance(conn, owner.account_id) == 10_000 - 1_234
    assert settled.balance_after_nanos == 10_000 - 1_234
    assert holds_of(conn, owner.account_id) == 0
    usage = conn.execute(
        "SELECT request_id, account_id::text, api_key_id::text, cost_nanos FROM usage_records "
        "WHERE id = %s",
        (settled.usage_record_id,),
    ).fetchone()
    assert usage == (hold.request_id, owner.account_id, key.id, 1_234)
    entries = usage_entries(conn, owner.account_id)
    assert len(entries) == 1
    amount, after, usage_id, key_id = entries[0]
    assert (amount, after, str(usage_id), str(key_id)) == (
        -1_234,
        10_000 - 1_234,
        settled.usage_record_id,
        key.id,
    )
    spent, last_used = conn.execute(
        "SELECT spent_nanos, last_used_at FROM api_keys WHERE id = %s", (key.id,)
    ).fetchone()  # type: ignore[misc]
    assert spent == 1_234
    assert last_used is not None
    assert invariant_holds(conn, owner.account_id)


def test_a_cost_of_zero_releases_everything_and_writes_no_ledger_entry(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    key = new_key(owner)
    fund(owner.account_id, 5_000)
    settled = db.run(credits.settle(hold_of(reserve(owner, 5_000, key_id=key.id)), record(0)))
    assert balance(conn, owner.account_id) == 5_000
    assert holds_of(conn, owner.account_id) == 0
    row = conn.execute(
        "SELECT cost_nanos FROM usage_records WHERE id = %s", (settled.usage_record_id,)
    ).fetchone()
    assert row == (0,)
    assert usage_entries(conn, owner.account_id) == []
    assert invariant_holds(conn, owner.account_id)


def test_reserve_lowers_the_hold_to_the_balance_when_it_covers_the_minimum(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 700)
    hold = hold_of(reserve(owner, 5_000, min_nanos=600))
    assert hold.amount_nanos == 700
    assert balance(conn, owner.account_id) == 0
    assert invariant_holds(conn, owner.account_id)
    db.run(credits.settle(hold, record(0)))


def test_reserve_refuses_below_the_minimum_and_holds_nothing(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 599)
    assert reserve(owner, 5_000, min_nanos=600) == credits.Refusal("credits")
    assert balance(conn, owner.account_id) == 599
    assert holds_of(conn, owner.account_id) == 0


def test_a_balance_short_only_because_of_live_holds_is_in_flight(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 1_000)
    first = hold_of(reserve(owner, 800, min_nanos=800))
    assert reserve(owner, 500, min_nanos=500) == credits.Refusal("in_flight")
    db.run(credits.settle(first, record(0)))
    assert isinstance(reserve(owner, 500, min_nanos=500), credits.Hold)
    assert invariant_holds(conn, owner.account_id)


def test_a_key_past_its_spending_limit_is_refused(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 10_000)
    key = new_key(owner, spend_limit_nanos=1_000, spent_nanos=700)
    assert reserve(owner, 500, min_nanos=301, key_id=key.id) == credits.Refusal("key_limit")
    exactly = hold_of(reserve(owner, 500, min_nanos=300, key_id=key.id))
    assert exactly.amount_nanos == 300
    assert balance(conn, owner.account_id) == 10_000 - 300


def test_the_hold_is_capped_by_the_keys_limit_net_of_its_other_holds(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 100_000)
    key = new_key(owner, spend_limit_nanos=1_000, spent_nanos=100)
    other_key = new_key(owner, spend_limit_nanos=1_000)
    assert hold_of(reserve(owner, 300, key_id=key.id)).amount_nanos == 300
    assert hold_of(reserve(owner, 400, key_id=other_key.id)).amount_nanos == 400
    # 1000 - 100 spent - 300 held by the same key; the other key's hold does not count.
    assert hold_of(reserve(owner, 5_000, key_id=key.id)).amount_nanos == 600
    assert reserve(owner, 5_000, key_id=key.id) == credits.Refusal("in_flight")
    assert invariant_holds(conn, owner.account_id)


def test_concurrency_counts_the_accounts_and_the_keys_live_holds(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 100_000)
    first_key, second_key = new_key(owner), new_key(owner)
    first = hold_of(reserve(owner, 10, key_id=first_key.id, concurrency=2, key_concurrency=1))
    again = reserve(owner, 10, key_id=first_key.id, concurrency=2, key_concurrency=1)
    assert again == credits.Refusal("key_concurrency")
    hold_of(reserve(owner, 10, key_id=second_key.id, concurrency=2, key_concurrency=1))
    third = reserve(owner, 10, key_id=second_key.id, concurrency=2, key_concurrency=5)
    assert third == credits.Refusal("concurrency")

    # A crashed request's hold stops counting once it expires (its money stays held).
    expire_hold(first.request_id)
    hold_of(reserve(owner, 10, key_id=first_key.id, concurrency=2, key_concurrency=1))
    assert invariant_holds(conn, owner.account_id)


def test_a_suspended_account_cannot_reserve(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 1_000)
    conn.execute("UPDATE accounts SET status = 'suspended' WHERE id = %s", (owner.account_id,))
    assert reserve(owner, 100) == credits.Refusal("account_inactive")
    assert balance(conn, owner.account_id) == 1_000


# --- settling twice, settling late ---------------------------------------------------------


def test_settling_the_same_request_twice_charges_once(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 10_000)
    hold = hold_of(reserve(owner, 2_000))
    db.run(credits.settle(hold, record(500)))
    before = (balance(conn, owner.account_id), usage_entries(conn, owner.account_id))

    again = db.run(credits.settle(hold, record(500)))

    # What is due was charged already: nothing more, one usage row, one ledger entry.
    assert (again.charged_nanos, again.uncollected_nanos) == (0, 0)
    assert (balance(conn, owner.account_id), usage_entries(conn, owner.account_id)) == before
    rows = conn.execute(
        "SELECT count(*), sum(cost_nanos) FROM usage_records WHERE request_id = %s",
        (hold.request_id,),
    ).fetchone()
    assert rows == (1, 500)
    assert before[0] == 10_000 - 500
    assert invariant_holds(conn, owner.account_id)


def test_settling_after_the_sweeper_released_the_hold_charges_the_balance(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    fund(owner.account_id, 10_000)
    hold = hold_of(reserve(owner, 3_000))
    expire_hold(hold.request_id)
    credits.release_expired_holds()
    assert balance(conn, owner.account_id) == 10_000

    settled = db.run(credits.settle(hold, record(1_000)))

    assert balance(conn, owner.account_id) == 9_000 == settled.balance_after_nanos
    assert [entry[0] for entry in usage_entries(conn, owner.account_id)] == [-1_000]
    assert invariant_holds(conn, owner.account_id)


# --- races -----------------------------------------------------------------------------------


def run_threads(count: int, work: Callable[[int], None], slots: threading.Semaphore) -> None:
    """`count` threads, released together, each on its own `gatewayz.db` connection
    (at most `slots` open at once, so the server's connection limit is respected)."""
    go = threading.Event()
    errors: list[BaseException] = []

    def run(i: int) -> None:
        go.wait()
        with slots:
            try:
                work(i)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
            finally:
                db.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join()
    assert errors == []


def connection_slots(conn: psycopg.Connection, wanted: int) -> threading.Semaphore:
    row = conn.execute(
        "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity"
    ).fetchone()
    free = int(row[0]) - 10  # type: ignore[index]
    return threading.BoundedSemaphore(max(4, min(wanted, free)))


def test_a_hundred_racing_reserves_grant_exactly_what_the_balance_covers(
    database_url: str, conn: psycopg.Connection
) -> None:
    hold_nanos = 1_000
    owner = new_owner()
    fund(owner.account_id, 40 * hold_nanos)
    slots = connection_slots(conn, 100)
    results: list[credits.Hold | credits.Refusal] = []
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        with db.connect(database_url) as own:
            while not done.is_set():
                samples.append(balance(own, owner.account_id))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run_threads(100, lambda _: results.append(reserve(owner, hold_nanos, hold_nanos)), slots)
    finally:
        done.set()
        sampler.join()

    holds = [r for r in results if isinstance(r, credits.Hold)]
    refusals = [r for r in results if isinstance(r, credits.Refusal)]
    assert (len(holds), len(refusals)) == (40, 60)
    assert {hold.amount_nanos for hold in holds} == {hold_nanos}
    assert set(refusals) == {credits.Refusal("in_flight")}
    assert balance(conn, owner.account_id) == 0
    assert samples
    assert min(samples) >= 0
    assert invariant_holds(conn, owner.account_id)

    run_threads(40, lambda i: db.run(credits.settle(holds[i], record(hold_nanos))), slots)

    entries = usage_entries(conn, owner.account_id)
    assert [entry[0] for entry in entries] == [-hold_nanos] * 40
    assert balance(conn, owner.account_id) == 0
    assert holds_of(conn, owner.account_id) == 0
    assert invariant_holds(conn, owner.account_id)


def test_racing_reserve_settle_cycles_keep_the_books_balanced(
    conn: psycopg.Connection,
) -> None:
    hold_nanos, funded = 1_000, 60_000
    owner = new_owner()
    key = new_key(owner)
    fund(owner.account_id, funded)
    charged: list[int] = []
    refused: list[credits.Refusal] = []

    def cycles(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(10):
            result = reserve(owner, hold_nanos, 100, key_id=key.id)
            if isinstance(result, credits.Refusal):
                refused.append(result)
                continue
            cost = rng.randint(0, result.amount_nanos)
            db.run(credits.settle(result, record(cost)))
            charged.append(cost)

    run_threads(20, cycles, connection_slots(conn, 20))

    assert len(charged) + len(refused) == 200
    assert charged
    assert balance(conn, owner.account_id) == funded - sum(charged)
    entries = usage_entries(conn, owner.account_id)
    assert sorted(-entry[0] for entry in entries) == sorted(cost for cost in charged if cost)
    spent = conn.execute("SELECT spent_nanos FROM api_keys WHERE id = %s", (key.id,)).fetchone()
    assert spent == (sum(charged),)
    assert holds_of(conn, owner.account_id) == 0
    assert invariant_holds(conn, owner.account_id)
