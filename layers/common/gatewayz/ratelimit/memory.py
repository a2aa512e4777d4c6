"""The in-process rate-limit store (docs/operations.md: no Redis configured; local runs).

Correct within ONE process only: every process (every Lambda sandbox, every worker)
counts on its own, so limits multiply by the number of processes. It is the Python
twin of the Lua script in `script.py` and keeps its exact semantics.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, ClassVar

from gatewayz.ratelimit.base import Store

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_SWEEP_EVERY_S = 60.0


class MemoryStore(Store):
    """Counters in a dict guarded by a lock; expired ones are swept once a minute."""

    name: ClassVar[str] = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, expires_at)
        self._next_sweep = clock() + _SWEEP_EVERY_S

    def ping(self) -> None:
        """Always answers: the store is this process."""

    def _hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
    ) -> list[int]:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            for key, delta in corrections:
                self._add(key, delta, now)
            version = self._live(version_key, now) if version_key is not None else None
            entries = [self._live(key, now) for key in keys]
            counts = [entry[0] if entry else 0 for entry in entries]
            denied = 0
            for i, count in enumerate(counts):
                limit, cost = args[3 * i], args[3 * i + 2]
                if cost > 0 and count + cost > limit:
                    denied = i + 1
                    break
            reply = [denied, version[0] if version else 0]
            for i, (key, entry) in enumerate(zip(keys, entries, strict=True)):
                period_ms, cost = args[3 * i + 1], args[3 * i + 2]
                if denied == 0 and cost > 0:
                    counts[i] += cost
                    # A window starts at its first hit and keeps that expiry.
                    expires_at = entry[1] if entry else now + period_ms / 1000
                    entry = self._counters[key] = (counts[i], expires_at)
                pttl = max(1, round((entry[1] - now) * 1000)) if entry else -2
                reply += (counts[i], pttl)
            return reply

    def _begin_hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
        on_answer: Callable[[], None] | None = None,
    ) -> Callable[[], Sequence[int]]:
        reply = self._hit(keys, args, corrections, version_key)  # nothing to wait for
        return lambda: reply

    def _adjust(self, key: str, delta: int) -> None:
        with self._lock:
            self._add(key, delta, self._clock())

    def _announce(self, key: str, version: int, ttl_ms: int) -> int:
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry and version <= entry[0]:
                return entry[0]
            self._counters[key] = (version, now + ttl_ms / 1000)
            return version

    def _add(self, key: str, delta: int, now: float) -> None:
        entry = self._live(key, now)
        if entry:
            self._counters[key] = (max(0, entry[0] + delta), entry[1])

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        """The key's (count, expires_at), or None when it is absent or expired."""
        entry = self._counters.get(key)
        return entry if entry and entry[1] > now else None

    def _sweep(self, now: float) -> None:
        # Expired counters are otherwise only replaced when their key is hit again.
        if now < self._next_sweep:
            return
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        self._next_sweep = now + _SWEEP_EVERY_S
