"""The rate-limit store interface (DESIGN §3 step 3).

A store counts requests and tokens in windows. `hit()` checks and counts every window
that applies to a request in one atomic step (one round trip on Redis): either all of
them have room and all are counted, or none is. Windows are fixed, anchored at their
first hit, and expire on their own, so a crashed function never leaks a count for long.

Backends: `redis.py` (redis-py, `REDIS_URL`), `upstash.py` (Upstash REST), `memory.py`
(in-process, single process only). Redis and Upstash run the same Lua script.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True, slots=True)
class Window:
    """One counter: at most `limit` units per `period_ms`; this request adds `cost` units."""

    key: str
    limit: int
    period_ms: int
    cost: int = 1


@dataclass(frozen=True, slots=True)
class WindowState:
    """A window after the hit: what it allows, what is left, and when it resets."""

    limit: int
    remaining: int
    reset_ms: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `Store.hit`; `windows` is in the order they were asked."""

    allowed: bool
    windows: tuple[WindowState, ...]
    denied: int | None = None  # index of the first window without room

    @property
    def retry_after_ms(self) -> int:
        """How long until the refusing window resets (0 when allowed)."""
        if self.denied is None:
            return 0
        return self.windows[self.denied].reset_ms


class Store(ABC):
    """Counters shared by every process that points at the same backend."""

    name: ClassVar[str]

    @abstractmethod
    def hit(self, windows: Sequence[Window]) -> Decision:
        """Count `cost` in every window if all have room, else count nothing.

        A window with `cost` 0 is only read. Raises `StoreUnavailable` when the backend
        cannot be reached.
        """

    @abstractmethod
    def adjust(self, key: str, delta: int) -> None:
        """Add `delta` (may be negative) to a live window; a missing or expired one stays absent.

        Used to correct a token estimate after the fact and to release a concurrency slot.
        """

    @abstractmethod
    def ping(self) -> None:
        """Raise `StoreUnavailable` unless the backend answers."""


class StoreUnavailable(Exception):
    """The rate-limit backend did not answer."""
