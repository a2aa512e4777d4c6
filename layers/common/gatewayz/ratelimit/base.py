"""The rate-limit store interface (docs/architecture.md, step 3).

A store counts requests and tokens in windows. `hit()` checks and counts every window
that applies to a request in one atomic step (one round trip on Redis): either all of
them have room and all are counted, or none is. Windows are fixed, anchored at their
first hit, and expire on their own, so a crashed function never leaks a count for long.
The same call reads the account's auth version (see `announce`), so news of a changed
key reaches every process without a round trip of its own. `begin_hit()` sends that call
and returns what reads its answer, so the request path holds credits meanwhile.

Backends: `redis.py` (redis-py, `REDIS_URL`), `upstash.py` (Upstash REST), `memory.py`
(in-process, single process only). Redis and Upstash run the same Lua script
(`script.py`); `memory.py` is its Python twin. This module holds what they share:
validating the windows, encoding them as the script's arguments and decoding its reply.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from concurrent.futures import ThreadPoolExecutor

# Backends that cannot send now and read later run a hit on one of these threads. A Lambda
# instance serves one request at a time, so one suffices there; a local server's threads
# may share a few. Started on first use, they live as long as the process.
_WORKERS = 4
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


# Window and WindowState are named tuples, not frozen dataclasses: a request makes up to
# six of each, and a tuple is made in one step where a frozen dataclass sets each field
# through `object.__setattr__`. Both are as immutable.


class Window(NamedTuple):
    """One counter: at most `limit` units per `period_ms`; this request adds `cost` units.

    A `limit` of 0 or less never has room: any `cost` > 0 is refused. A `cost` of 0
    only reads the window and never refuses. Keys of one `hit()` must be distinct and,
    on Redis Cluster, share one hash tag (e.g. `rl:{acct:123}:rpm`).
    """

    key: str
    limit: int
    period_ms: int
    cost: int = 1


class WindowState(NamedTuple):
    """A window after the hit: what it allows, what is left, and when it resets."""

    limit: int
    remaining: int
    reset_ms: int  # until the window resets; its full period when it does not exist yet


@record
class Decision:
    """The outcome of `Store.hit`; `windows` is in the order they were asked."""

    allowed: bool
    windows: tuple[WindowState, ...]
    denied: int | None = None  # index of the first window without room
    version: int = 0  # the value at `version_key` (0: none asked, or none announced)

    @property
    def retry_after_ms(self) -> int:
        """How long until the refusing window resets (0 when allowed)."""
        if self.denied is None:
            return 0
        return self.windows[self.denied].reset_ms


class Store(ABC):
    """Counters shared by every process that points at the same backend.

    A backend implements four primitives: `_hit` (the script's "hit"), `_adjust`,
    `_announce` and `ping`. Every failure to reach the backend surfaces as
    `StoreUnavailable`; whether to fail open or closed is the caller's decision.
    """

    name: ClassVar[str]

    def hit(
        self,
        windows: Sequence[Window],
        corrections: Sequence[tuple[str, int]] = (),
        version_key: str | None = None,
    ) -> Decision:
        """Count `cost` in every window if all have room, else count nothing.

        A window has room when `count + cost <= limit`; a window with `cost` 0 is only
        read. A window counted for the first time starts its period now. `corrections`
        (key, delta) are applied first, as `adjust` would, in the same round trip: that
        is how a token estimate is corrected without a call of its own, and, with no
        windows, how a refused request gives its counts back in one call. The value
        `announce` left at `version_key` comes back as `Decision.version`.

        Raises:
            ValueError: a negative cost, a period under 1 ms, or a key given twice.
            StoreUnavailable: the backend cannot be reached or refused the request.
        """
        return self.begin_hit(windows, corrections, version_key)()

    def begin_hit(
        self,
        windows: Sequence[Window],
        corrections: Sequence[tuple[str, int]] = (),
        version_key: str | None = None,
        on_answer: Callable[[], None] | None = None,
    ) -> Callable[[], Decision]:
        """`hit`, started: the returned call waits for the store's answer and gives the
        decision (or raises what `hit` raises). Call it exactly once; the caller works
        meanwhile (the request path holds credits, gatewayz/chat/admission.py).
        `on_answer`: called from the running event loop when the answer has arrived,
        before anyone asked for it, by a store that can tell (Redis); it may then call
        the returned call, which reads the answer without waiting.

        Raises:
            ValueError: as `hit`, at once.
        """
        live = [(key, delta) for key, delta in corrections if delta]
        if not windows and not live and version_key is None:
            return lambda: Decision(allowed=True, windows=())
        keys = [w.key for w in windows]
        if len(set(keys)) != len(keys) or version_key in keys:
            raise ValueError("rate-limit windows of one hit must have distinct keys")
        args: list[int] = []
        for w in windows:
            if w.cost < 0 or w.period_ms < 1:
                raise ValueError(f"invalid rate-limit window {w.key!r}: cost < 0 or period < 1 ms")
            args += (w.limit, w.period_ms, w.cost)
        reply = self._begin_hit(keys, args, live, version_key, on_answer)
        return lambda: _decide(windows, reply())

    def adjust(self, key: str, delta: int) -> None:
        """Add `delta` (may be negative) to a live window; a missing or expired one stays absent.

        The window keeps its expiry, and its count never drops below 0. Used to correct
        a token estimate after the fact and to release a concurrency slot.

        Raises:
            StoreUnavailable: the backend cannot be reached or refused the request.
        """
        if delta:
            self._adjust(key, delta)

    def announce(self, key: str, version: int, ttl_ms: int) -> int:
        """Set `key` to `version` unless it already holds a greater one; return its value.

        The key lives `ttl_ms` from the last raise: long enough that every process whose
        cache predates the announcement has read it (see gatewayz/identity/auth.py).

        Raises:
            ValueError: a negative version or a TTL under 1 ms.
            StoreUnavailable: the backend cannot be reached or refused the request.
        """
        if version < 0 or ttl_ms < 1:
            raise ValueError("an announced version is >= 0 and lives >= 1 ms")
        return self._announce(key, version, ttl_ms)

    @abstractmethod
    def ping(self) -> None:
        """Raise `StoreUnavailable` unless the backend answers."""

    @abstractmethod
    def _hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
    ) -> Sequence[int]:
        """Apply `corrections`, then run "hit" on distinct `keys` with `args` =
        (limit, period_ms, cost) per key, and read `version_key`, all in one atomic step.

        Returns `[denied, version, count_1, pttl_1, ..., count_n, pttl_n]`: `denied` is
        the 1-based index of the first window without room (0: allowed), `version` the
        integer at `version_key` (0 when absent or not asked), `count` the value after
        the hit, `pttl` the milliseconds left (negative: the key does not exist).
        """

    def _begin_hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
        on_answer: Callable[[], None] | None = None,
    ) -> Callable[[], Sequence[int]]:
        """`_hit` started, its reply read by the returned call. Here: on a worker thread
        (`on_answer` is not called); a backend that can send a command now and read its
        reply later does that instead."""
        return on_worker(self._hit, keys, args, corrections, version_key)

    @abstractmethod
    def _adjust(self, key: str, delta: int) -> None:
        """Add `delta` to an existing `key`, keeping its expiry and flooring at 0."""

    @abstractmethod
    def _announce(self, key: str, version: int, ttl_ms: int) -> int:
        """Raise `key` to `version` (expiring in `ttl_ms`) if it is lower or absent;
        return the value it holds afterwards."""


def on_worker[T](call: Callable[..., T], *args: Any) -> Callable[[], T]:
    """`call(*args)` started on a worker thread; the returned call waits for its result
    (or raises its exception)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                from concurrent.futures import ThreadPoolExecutor

                _executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="gatewayz-ratelimit")
    return _executor.submit(call, *args).result


class StoreUnavailable(Exception):
    """The rate-limit backend did not answer."""


def _decide(windows: Sequence[Window], reply: Sequence[int]) -> Decision:
    if len(reply) != 2 + 2 * len(windows):
        raise StoreUnavailable(f"rate-limit store gave a malformed reply ({len(reply)} items)")
    denied, version = reply[0], reply[1]
    if not 0 <= denied <= len(windows) or version < 0:
        raise StoreUnavailable(f"rate-limit store gave a malformed reply {list(reply[:2])}")
    states = tuple(
        WindowState(
            limit=w.limit,
            remaining=max(0, w.limit - reply[2 + 2 * i]),
            reset_ms=pttl if (pttl := reply[3 + 2 * i]) >= 0 else w.period_ms,
        )
        for i, w in enumerate(windows)
    )
    return Decision(
        allowed=denied == 0,
        windows=states,
        denied=denied - 1 if denied else None,
        version=version,
    )
