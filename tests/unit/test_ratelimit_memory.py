"""The in-process store on a clock the test moves (behaviour shared with Redis is in
tests/integration/test_ratelimit_store.py)."""

from __future__ import annotations

from gatewayz.ratelimit import Window
from gatewayz.ratelimit.memory import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_resets_exactly_at_the_end_of_its_period() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    window = Window("k", 1, 500)
    assert store.hit([window]).windows[0].reset_ms == 500
    clock.now += 0.3
    refused = store.hit([window])
    assert (refused.allowed, refused.retry_after_ms) == (False, 200)
    clock.now += 0.2
    assert store.hit([window]).allowed


def test_adjust_after_expiry_does_not_revive_the_window() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.hit([Window("k", 10, 100, cost=4)])
    clock.now += 0.1
    store.adjust("k", 3)
    assert store.hit([Window("k", 10, 100, cost=0)]).windows[0].remaining == 10


def test_expired_counters_are_swept() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    for i in range(1000):
        store.hit([Window(f"k{i}", 1, 1000)])
    clock.now += 61  # past every window and past the sweep interval
    store.hit([Window("fresh", 1, 1000)])
    assert list(store._counters) == ["fresh"]
