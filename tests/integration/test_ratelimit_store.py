"""The rate-limit stores (gatewayz/ratelimit), each test against every backend.

Memory runs in-process; Redis on the real test Redis; Upstash through the fake Upstash
REST server (tests/fakes/upstash.py) backed by that same Redis, driven by the official
upstash-redis client.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
import upstash_redis

from gatewayz.config import get_settings
from gatewayz.errors import MissingConfiguration
from gatewayz.ratelimit import StoreUnavailable, Window, WindowState, get_store
from gatewayz.ratelimit.memory import MemoryStore
from gatewayz.ratelimit.redis import RedisStore
from gatewayz.ratelimit.script import SHA
from gatewayz.ratelimit.upstash import UpstashStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    import redis

    from gatewayz.ratelimit import Store
    from gatewayz.ratelimit.base import Decision

MINUTE = 60_000
BIG = 10**9


def read(store: Store, key: str, period_ms: int = MINUTE) -> WindowState:
    """The window's state without counting (cost 0)."""
    return store.hit([Window(key, BIG, period_ms, cost=0)]).windows[0]


def used(store: Store, key: str) -> int:
    return BIG - read(store, key).remaining


# --- hit -------------------------------------------------------------------------------


def test_exactly_limit_of_three_times_as_many_hits_pass(store: Store, rl_prefix: str) -> None:
    key, n = rl_prefix + "rpm", 7
    allowed = [store.hit([Window(key, n, MINUTE)]).allowed for _ in range(3 * n)]
    assert allowed == [True] * n + [False] * (2 * n)
    assert used(store, key) == n


def test_refused_multi_window_hit_counts_in_none(store: Store, rl_prefix: str) -> None:
    keys = [rl_prefix + name for name in ("key-rpm", "acct-rpm", "acct-rpd")]
    windows = [Window(keys[0], 10, MINUTE), Window(keys[1], 2, MINUTE), Window(keys[2], 10, MINUTE)]
    assert store.hit(windows).allowed
    assert store.hit(windows).allowed
    refused = store.hit(windows)
    assert not refused.allowed
    assert refused.denied == 1
    assert [w.remaining for w in refused.windows] == [8, 0, 8]
    assert [used(store, k) for k in keys] == [2, 2, 2]


def test_denied_names_the_first_refusing_window(store: Store, rl_prefix: str) -> None:
    a, b, c = (rl_prefix + s for s in "abc")
    assert store.hit([Window(b, 1, MINUTE), Window(c, 1, MINUTE)]).allowed
    decision = store.hit([Window(a, 5, MINUTE), Window(b, 1, MINUTE), Window(c, 1, MINUTE)])
    assert decision.denied == 1
    assert used(store, a) == 0


def test_token_window_counts_cost(store: Store, rl_prefix: str) -> None:
    key = rl_prefix + "tpm"

    def spend(cost: int) -> tuple[bool, int]:
        decision = store.hit([Window(key, 100, MINUTE, cost=cost)])
        return decision.allowed, decision.windows[0].remaining

    assert spend(60) == (True, 40)
    assert spend(50) == (False, 40)  # 60 + 50 > 100: nothing counted
    assert spend(40) == (True, 0)  # exactly the limit is allowed
    assert spend(1) == (False, 0)


def test_cost_zero_only_reads(store: Store, rl_prefix: str) -> None:
    missing, full, rpm = rl_prefix + "missing", rl_prefix + "full", rl_prefix + "rpm"
    state = read(store, missing, period_ms=5000)
    assert state == WindowState(limit=BIG, remaining=BIG, reset_ms=5000)
    store.adjust(missing, 5)  # the read did not create the key, so this changes nothing
    assert used(store, missing) == 0

    store.hit([Window(full, 1, MINUTE)])
    decision = store.hit([Window(full, 1, MINUTE, cost=0), Window(rpm, 5, MINUTE)])
    assert decision.allowed  # a read-only window never refuses, even when exhausted
    assert decision.windows[0].remaining == 0
    assert (used(store, full), used(store, rpm)) == (1, 1)


@pytest.mark.parametrize("limit", [0, -3])
def test_limit_zero_or_less_refuses(store: Store, rl_prefix: str, limit: int) -> None:
    key = rl_prefix + "blocked"
    decision = store.hit([Window(key, limit, MINUTE)])
    assert (decision.allowed, decision.denied, decision.windows[0].remaining) == (False, 0, 0)
    assert used(store, key) == 0


def test_remaining_and_reset(store: Store, rl_prefix: str) -> None:
    key = rl_prefix + "rpm"
    for _ in range(3):
        decision = store.hit([Window(key, 5, MINUTE)])
    assert decision.allowed
    assert decision.retry_after_ms == 0
    assert decision.windows[0].limit == 5
    assert decision.windows[0].remaining == 2
    assert 0 < decision.windows[0].reset_ms <= MINUTE
    store.hit([Window(key, 5, MINUTE, cost=2)])
    refused = store.hit([Window(key, 5, MINUTE)])
    assert refused.denied == 0
    assert 0 < refused.retry_after_ms == refused.windows[0].reset_ms <= MINUTE


def test_window_expires_after_its_period(store: Store, rl_prefix: str) -> None:
    window = Window(rl_prefix + "short", 2, 200)
    assert store.hit([window]).allowed
    assert store.hit([window]).allowed
    refused = store.hit([window])
    assert not refused.allowed
    time.sleep(refused.retry_after_ms / 1000 + 0.05)
    again = store.hit([window])
    assert again.allowed
    assert again.windows[0].remaining == 1  # a fresh window


def test_window_is_fixed_from_its_first_hit(store: Store, rl_prefix: str) -> None:
    window = Window(rl_prefix + "fixed", 10, 400)
    store.hit([window])
    time.sleep(0.2)
    later = store.hit([window])
    assert later.windows[0].reset_ms <= 201  # a later hit does not push the reset back


def test_invalid_windows_are_refused_before_any_count(store: Store, rl_prefix: str) -> None:
    key = rl_prefix + "k"
    with pytest.raises(ValueError, match="distinct"):
        store.hit([Window(key, 5, MINUTE), Window(key, 5, MINUTE)])
    with pytest.raises(ValueError, match="invalid"):
        store.hit([Window(key, 5, MINUTE, cost=-1)])
    with pytest.raises(ValueError, match="invalid"):
        store.hit([Window(key, 5, 0)])
    assert used(store, key) == 0
    assert store.hit([]).allowed


# --- adjust ----------------------------------------------------------------------------


def test_adjust_moves_a_live_window_and_floors_at_zero(store: Store, rl_prefix: str) -> None:
    key = rl_prefix + "tpm"
    store.hit([Window(key, 10, MINUTE, cost=5)])
    store.adjust(key, 3)
    assert used(store, key) == 8
    store.adjust(key, -2)
    assert used(store, key) == 6
    store.adjust(key, -100)
    assert used(store, key) == 0
    store.adjust(key, 4)  # still live at 0: not deleted by the clamp
    assert used(store, key) == 4
    assert store.hit([Window(key, 10, MINUTE, cost=7)]).allowed is False


def test_adjust_never_creates_a_window(store: Store, rl_prefix: str) -> None:
    key = rl_prefix + "absent"
    store.adjust(key, 5)
    store.adjust(key, -5)
    assert read(store, key, period_ms=7000) == WindowState(BIG, BIG, 7000)


def test_adjust_keeps_the_expiry(store: Store, rl_prefix: str) -> None:
    key = rl_prefix + "short"
    store.hit([Window(key, 10, 200, cost=2)])
    store.adjust(key, 3)
    assert used(store, key) == 5
    time.sleep(0.3)
    assert used(store, key) == 0


def test_corrections_ride_along_with_a_hit_before_its_check(store: Store, rl_prefix: str) -> None:
    tpm, rpm = rl_prefix + "tpm", rl_prefix + "rpm"
    # An estimate of 900 tokens fills the window; the request used 100.
    assert store.hit([Window(tpm, 1000, MINUTE, cost=900)]).allowed
    assert not store.hit([Window(tpm, 1000, MINUTE, cost=500)]).allowed
    # The correction is applied first, so the next estimate fits, in one call.
    decision = store.hit(
        [Window(rpm, 5, MINUTE), Window(tpm, 1000, MINUTE, cost=500)], [(tpm, -800)]
    )
    assert decision.allowed
    assert used(store, tpm) == 600
    assert used(store, rpm) == 1


def test_a_correction_never_creates_a_window_and_stands_alone(store: Store, rl_prefix: str) -> None:
    gone = rl_prefix + "gone"
    decision = store.hit([], [(gone, 50)])
    assert decision.allowed
    assert decision.windows == ()
    assert read(store, gone).remaining == BIG


# --- the auth version ------------------------------------------------------------------


def test_a_hit_reads_the_announced_version(store: Store, rl_prefix: str) -> None:
    version, rpm = rl_prefix + "v", rl_prefix + "rpm"
    assert store.hit([Window(rpm, 2, MINUTE)], version_key=version).version == 0  # none yet
    assert store.announce(version, 7, MINUTE) == 7
    decision = store.hit([Window(rpm, 2, MINUTE)], version_key=version)
    assert (decision.allowed, decision.version, decision.windows[0].remaining) == (True, 7, 0)
    refused = store.hit([Window(rpm, 2, MINUTE)], version_key=version)
    assert (refused.allowed, refused.version) == (False, 7)
    assert store.hit([], version_key=version).version == 7  # a read on its own
    assert store.hit([Window(rpm, 9, MINUTE)]).version == 0  # not asked for
    assert used(store, rpm) == 3


def test_an_announced_version_only_rises(store: Store, rl_prefix: str) -> None:
    version = rl_prefix + "v"
    assert store.announce(version, 5, MINUTE) == 5
    assert store.announce(version, 3, MINUTE) == 5
    assert store.hit([], version_key=version).version == 5
    assert store.announce(version, 6, MINUTE) == 6
    assert store.hit([], version_key=version).version == 6


def test_an_announced_version_expires(store: Store, rl_prefix: str) -> None:
    version = rl_prefix + "v"
    store.announce(version, 4, 200)
    assert store.hit([], version_key=version).version == 4
    time.sleep(0.3)
    assert store.hit([], version_key=version).version == 0


def test_corrections_and_a_version_read_share_one_call(store: Store, rl_prefix: str) -> None:
    version, tpm = rl_prefix + "v", rl_prefix + "tpm"
    store.hit([Window(tpm, 100, MINUTE, cost=100)])
    store.announce(version, 2, MINUTE)
    decision = store.hit([Window(tpm, 100, MINUTE, cost=30)], [(tpm, -100)], version)
    assert (decision.allowed, decision.version, used(store, tpm)) == (True, 2, 30)


def test_a_version_key_is_not_a_window_and_versions_are_not_negative(
    store: Store, rl_prefix: str
) -> None:
    key = rl_prefix + "k"
    with pytest.raises(ValueError, match="distinct"):
        store.hit([Window(key, 5, MINUTE)], version_key=key)
    with pytest.raises(ValueError, match="version"):
        store.announce(key, -1, MINUTE)
    with pytest.raises(ValueError, match="version"):
        store.announce(key, 1, 0)
    assert used(store, key) == 0


# --- concurrency and sharing -----------------------------------------------------------


def _race(stores: list[Store], window: Window, threads: int) -> int:
    """Hit `window` from `threads` threads started together; how many were allowed."""
    barrier = threading.Barrier(threads)

    def one(i: int) -> bool:
        barrier.wait()
        return stores[i % len(stores)].hit([window]).allowed

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(one, range(threads)))


def test_concurrent_hits_never_exceed_the_limit(store: Store, rl_prefix: str) -> None:
    assert _race([store], Window(rl_prefix + "race", 10, MINUTE), threads=50) == 10


def test_stores_sharing_a_backend_share_the_limit(
    shared_store_factory: Callable[[], Store], rl_prefix: str
) -> None:
    first, second = shared_store_factory(), shared_store_factory()
    window = Window(rl_prefix + "shared", 12, MINUTE)
    assert _race([first, second], window, threads=40) == 12
    assert used(first, window.key) == used(second, window.key) == 12


def test_memory_stores_do_not_share() -> None:
    window = Window("k", 1, MINUTE)
    assert MemoryStore().hit([window]).allowed
    assert MemoryStore().hit([window]).allowed


def _hit_many(url: str, key: str, limit: int, times: int) -> int:
    """Runs in a child process: how many of `times` hits were allowed."""
    store = RedisStore.from_url(url)
    return sum(store.hit([Window(key, limit, MINUTE)]).allowed for _ in range(times))


def test_processes_sharing_redis_share_the_limit(redis_url: str, rl_prefix: str) -> None:
    key = rl_prefix + "procs"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        allowed = pool.starmap(_hit_many, [(redis_url, key, 30, 25)] * 4)
    assert sum(allowed) == 30


# --- started hits (the request path overlaps them with its credit hold) ----------------


def test_started_hits_count_when_their_answers_are_read(store: Store, rl_prefix: str) -> None:
    window = Window(rl_prefix + "begun", 2, MINUTE)
    started = [store.begin_hit([window]) for _ in range(3)]  # all three in flight at once
    assert sorted(decided().allowed for decided in started) == [False, True, True]
    assert used(store, window.key) == 2


def test_redis_starts_a_hit_without_a_thread(redis_url: str, rl_prefix: str) -> None:
    # Sent now, read later, on the calling thread: no thread hop on the request path.
    probe = (
        "import sys, threading\n"
        "from gatewayz.ratelimit import Window\n"
        "from gatewayz.ratelimit.redis import RedisStore\n"
        "store = RedisStore.from_url(sys.argv[1])\n"
        "for _ in range(3):\n"
        "    assert store.begin_hit([Window(sys.argv[2], 10, 60_000)])().allowed\n"
        "print(threading.active_count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, redis_url, rl_prefix + "threads"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "1"


def test_redis_reads_started_hits_on_one_connection(
    redis_url: str, redis_client: redis.Redis, rl_prefix: str
) -> None:
    import redis as redis_py

    name = "gwtest-" + uuid.uuid4().hex[:12]
    store = RedisStore(redis_py.Redis.from_url(redis_url, client_name=name))
    store.ping()  # as the warm-up does: the connection it opens is the one hits then use
    for _ in range(20):
        assert store.begin_hit([Window(rl_prefix + "pool", 100, MINUTE)])().allowed
    assert [c["name"] for c in redis_client.client_list()].count(name) == 1


def test_redis_replaces_a_connection_the_server_closed(
    redis_url: str, redis_client: redis.Redis, rl_prefix: str
) -> None:
    store, window = RedisStore.from_url(redis_url), Window(rl_prefix + "closed", 10, MINUTE)
    before = {c["id"] for c in redis_client.client_list()}
    assert store.hit([window]).allowed
    (mine,) = [c["id"] for c in redis_client.client_list() if c["id"] not in before]
    redis_client.client_kill_filter(_id=mine)  # the store's connection is now dead
    assert store.begin_hit([window])().allowed
    assert used(store, window.key) == 2


@pytest.fixture
def cutting_proxy(redis_url: str) -> Iterator[int]:
    """A TCP proxy to the test Redis that cuts its first connection when an EVALSHA
    arrives on it, before passing it on: a connection that breaks after the send."""
    from urllib.parse import urlsplit

    target = urlsplit(redis_url)
    listener = socket.create_server(("127.0.0.1", 0))
    first = threading.Event()

    def pump(src: socket.socket, dst: socket.socket, cut: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if cut and b"EVALSHA" in data:
                    break
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                server = socket.create_connection((target.hostname, target.port or 6379))
                cut = not first.is_set()
                first.set()
                threading.Thread(target=pump, args=(client, server, cut), daemon=True).start()
                threading.Thread(target=pump, args=(server, client, False), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def test_redis_retries_a_started_hit_whose_connection_broke_after_the_send(
    redis_url: str, cutting_proxy: int, rl_prefix: str
) -> None:
    from urllib.parse import urlsplit

    db = urlsplit(redis_url).path or "/0"
    store = RedisStore.from_url(f"redis://127.0.0.1:{cutting_proxy}{db}")
    window = Window(rl_prefix + "cut", 10, MINUTE)
    assert store.begin_hit([window])().allowed  # cut before Redis saw it, then retried
    assert used(store, window.key) == 1


# --- the answer worked out when it arrives (Redis on an event loop) ---------------------


def _on_loop(kind: str, main: Callable[[], Awaitable[None]]) -> None:
    if kind == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


async def _until(done: Callable[[], bool], what: str) -> None:
    """Let the loop run until `done()` (the event it waits for is on loopback)."""
    for _ in range(500):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_redis_tells_the_loop_when_a_started_hits_answer_arrives(
    redis_url: str, redis_client: redis.Redis, rl_prefix: str, loop: str
) -> None:
    """The request path works out its admission while it waits for its credit hold, as
    soon as Redis answers: `on_answer` comes from the loop, unasked, and the decision is
    then read without waiting. Across connections redis-py replaces (the server closed
    the store's while it was idle, and while its answer was awaited), the loop keeps
    watching the live socket and none of the closed ones (no descriptor left open)."""
    import redis as redis_py

    name = "gwtest-" + uuid.uuid4().hex[:12]  # every connection the store opens is named
    store = RedisStore(redis_py.Redis.from_url(redis_url, client_name=name, socket_timeout=1))
    window = Window(rl_prefix + "told", 100, MINUTE)

    def kill_mine() -> None:
        for client in redis_client.client_list():
            if client["name"] == name:
                redis_client.client_kill_filter(_id=client["id"])

    async def main() -> None:
        assert store.begin_hit([window])().allowed  # the thread's connection is open
        told: dict[int, bool] = {}  # round -> allowed, read when the loop said it came
        fds = 0
        for round_ in range(6):
            if round_ in (2, 4):
                kill_mine()  # idle: the next send finds it dead and redis-py reconnects
                await asyncio.sleep(0.05)  # the loop sees the close arrive meanwhile
            started: list[Callable[[], Decision]] = []

            def arrived(r: int = round_, started: list = started) -> None:
                told[r] = started[0]().allowed  # as the limiter does: read at once

            started.append(store.begin_hit([window], on_answer=arrived))
            await _until(lambda r=round_: r in told, f"told of answer {round_}")
            if round_ == 3:  # reconnected once, as at the end (reconnected again)
                fds = _open_fds()
        assert told == dict.fromkeys(range(6), True)
        assert fds == _open_fds()  # the closed sockets' watches let their descriptors go

    _on_loop(loop, main)
    assert used(store, window.key) == 7


def test_a_hit_with_no_descriptor_to_spare_for_the_watch_is_read_when_asked(
    redis_url: str, rl_prefix: str
) -> None:
    """The watch needs a descriptor of its own; when the process has none to spare the
    hit goes on unwatched (its answer read after the hold), never failed, and its
    connection stays usable."""
    import resource

    store, window = RedisStore.from_url(redis_url), Window(rl_prefix + "nofd", 100, MINUTE)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    async def main() -> None:
        assert store.begin_hit([window])().allowed  # the connection is open, unwatched
        told: list[bool] = []
        # No new descriptor above stderr's: the ones open stay, none can be made.
        resource.setrlimit(resource.RLIMIT_NOFILE, (3, hard))
        try:
            decided = store.begin_hit([window], on_answer=lambda: told.append(True))
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        await asyncio.sleep(0.05)
        assert decided().allowed
        assert told == []  # not watched
        decided = store.begin_hit([window], on_answer=lambda: told.append(True))
        await _until(lambda: told == [True], "told, descriptors to spare again")
        assert decided().allowed

    asyncio.run(main())
    assert used(store, window.key) == 3


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_started_admission_is_worked_out_once_when_its_answer_arrives(
    redis_url: str, rl_prefix: str, loop: str
) -> None:
    """`limiter.begin_admit`'s call gives the same admission, or raises the same refusal,
    however often it is called: worked out from the one answer the loop read."""
    from types import SimpleNamespace

    from gatewayz import errors
    from gatewayz.ratelimit import limiter

    store = RedisStore.from_url(redis_url)
    limits = limiter.Limits(requests_per_minute=1, requests_per_day=100, tokens_per_minute=BIG,
                            concurrent_requests=1)  # fmt: skip
    caller = SimpleNamespace(account_id=rl_prefix + uuid.uuid4().hex, key_id="k", limits=limits)

    async def main() -> None:
        first = limiter.begin_admit(store, caller, 10)
        await asyncio.sleep(0.05)  # its answer arrives and is worked out meanwhile
        assert first() is first()
        refused = limiter.begin_admit(store, caller, 10)  # the minute's one request is taken
        await asyncio.sleep(0.05)
        for _ in range(2):
            with pytest.raises(errors.RateLimited):
                refused()

    _on_loop(loop, main)


# --- the script cache, availability ----------------------------------------------------


def test_recovers_when_the_server_forgot_the_script(
    shared_store_factory: Callable[[], Store], redis_client: redis.Redis, rl_prefix: str
) -> None:
    store, window = shared_store_factory(), Window(rl_prefix + "noscript", 5, MINUTE)
    assert store.hit([window]).allowed
    redis_client.script_flush()
    decision = store.hit([window])  # EVALSHA -> NOSCRIPT -> EVAL
    assert decision.windows[0].remaining == 3
    assert redis_client.script_exists(SHA) == [True]  # EVAL cached it again


def test_ping_reaches_a_live_server(
    shared_store_factory: Callable[[], Store], redis_client: redis.Redis
) -> None:
    # (The in-process store has no server to reach: its ping is nothing to test.)
    def pings() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))

    before = pings()
    shared_store_factory().ping()
    assert pings() > before


@pytest.fixture
def dead_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def _assert_unavailable(store: Store, rl_prefix: str) -> None:
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.hit([Window(rl_prefix + "k", 5, MINUTE)])
    with pytest.raises(StoreUnavailable):
        store.adjust(rl_prefix + "k", 1)
    with pytest.raises(StoreUnavailable):
        store.announce(rl_prefix + "v", 1, MINUTE)


def test_unreachable_redis_is_unavailable(dead_port: int, rl_prefix: str) -> None:
    _assert_unavailable(RedisStore.from_url(f"redis://127.0.0.1:{dead_port}/0"), rl_prefix)


def test_unreachable_upstash_is_unavailable(dead_port: int, rl_prefix: str) -> None:
    _assert_unavailable(UpstashStore(f"http://127.0.0.1:{dead_port}", "tok"), rl_prefix)


def test_silent_redis_times_out(silent_port: int, rl_prefix: str) -> None:
    url = f"redis://127.0.0.1:{silent_port}/0"
    _assert_unavailable(RedisStore.from_url(url, timeout_s=0.2), rl_prefix)


def test_silent_upstash_times_out(silent_port: int, rl_prefix: str) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    _assert_unavailable(UpstashStore(url, "tok", timeout_s=0.2), rl_prefix)


def test_wrong_upstash_token_is_unavailable_and_says_why(
    upstash: tuple[str, str], rl_prefix: str
) -> None:
    store = UpstashStore(upstash[0], "not-the-token")
    _assert_unavailable(store, rl_prefix)
    with pytest.raises(StoreUnavailable, match="WRONGPASS"):
        store.ping()


def test_fake_upstash_speaks_the_rest_protocol(upstash: tuple[str, str], rl_prefix: str) -> None:
    url, token = upstash
    for encoding in ("base64", None):
        client = upstash_redis.Redis(url=url, token=token, rest_encoding=encoding, rest_retries=0)
        client.set(rl_prefix + "s", "héllo ✓", ex=60)
        assert client.get(rl_prefix + "s") == "héllo ✓"
        with pytest.raises(upstash_redis.errors.UpstashError, match=r"^ERR"):
            client.incr(rl_prefix + "s")
        pipe = client.pipeline()
        pipe.incr(rl_prefix + "n")
        pipe.expire(rl_prefix + "n", 60)
        assert pipe.exec()[0] in (1, 2)


# --- get_store() -----------------------------------------------------------------------

_STORE_VARS = ("REDIS_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN")


@pytest.fixture
def store_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean store configuration; the cached settings and store are reset around the test."""
    for name in _STORE_VARS:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    get_store.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    get_store.cache_clear()


def test_get_store_picks_redis(store_env: pytest.MonkeyPatch, redis_url: str) -> None:
    store_env.setenv("REDIS_URL", redis_url)
    store = get_store()
    assert isinstance(store, RedisStore)
    assert get_store() is store
    store.ping()


def test_get_store_picks_upstash(store_env: pytest.MonkeyPatch, upstash: tuple[str, str]) -> None:
    store_env.setenv("UPSTASH_REDIS_REST_URL", upstash[0])
    store_env.setenv("UPSTASH_REDIS_REST_TOKEN", upstash[1])
    store = get_store()
    assert isinstance(store, UpstashStore)
    store.ping()


def test_get_store_defaults_to_memory(store_env: pytest.MonkeyPatch) -> None:
    assert isinstance(get_store(), MemoryStore)


def test_in_lambda_a_shared_store_is_required(
    store_env: pytest.MonkeyPatch, redis_url: str
) -> None:
    # One in-process store per sandbox would multiply every limit by the sandboxes.
    store_env.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-chat")
    with pytest.raises(MissingConfiguration, match="REDIS_URL") as caught:
        get_store()
    assert (caught.value.status, caught.value.code) == (503, "missing_configuration")
    store_env.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    assert isinstance(get_store(), RedisStore)


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"),
        ("UPSTASH_REDIS_REST_TOKEN", "UPSTASH_REDIS_REST_URL"),
    ],
)
def test_get_store_refuses_half_an_upstash_config(
    store_env: pytest.MonkeyPatch, present: str, missing: str
) -> None:
    store_env.setenv(present, "https://example.upstash.io" if "URL" in present else "tok-123")
    with pytest.raises(MissingConfiguration, match=missing):
        get_store()
