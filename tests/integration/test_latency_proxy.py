"""bench/latency_proxy.py counts what bench/README.md reports from it: one round trip per
request and its answer, however many reads either takes, pipelined commands as one, and
each request's store round trips split around its upstream call. Nothing here is timed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import redis

from tests.bench_scripts import load

if TYPE_CHECKING:
    from collections.abc import Iterator


latency_proxy = load("latency_proxy")


@pytest.fixture
def proxied(redis_url: str) -> Iterator[tuple[Any, redis.Redis]]:
    """A proxy adding 2 ms to every round trip to the test Redis, and a client through it."""
    target = urlsplit(redis_url)
    proxy = latency_proxy.Proxy(2.0, forward={"redis": target.port or 6379}, watch={})
    client = redis.Redis(
        host="127.0.0.1", port=proxy.ports["redis"], db=int(target.path.strip("/") or 0)
    )
    client.ping()  # the connection and its set-up commands, before counting
    proxy.reset()
    yield proxy, client
    client.close()
    proxy.stop()


def test_each_request_and_its_answer_is_one_round_trip(
    proxied: tuple[Any, redis.Redis],
) -> None:
    proxy, client = proxied
    key = f"test:latency-proxy:{uuid.uuid4().hex}"
    big = b"x" * 1_000_000  # an answer that takes many reads
    assert client.set(key, big, ex=60)
    assert client.get(key) == big
    assert client.ping()
    trips = proxy.stats()["trips"]
    assert [trip[0] for trip in trips] == ["redis"] * 3
    assert len({trip[1] for trip in trips}) == 1  # one connection


def test_pipelined_commands_are_one_round_trip(proxied: tuple[Any, redis.Redis]) -> None:
    proxy, client = proxied
    pipe = client.pipeline(transaction=False)
    for _ in range(20):
        pipe.ping()
    assert pipe.execute() == [True] * 20
    assert len(proxy.stats()["trips"]) == 1


def test_store_round_trips_split_around_each_requests_upstream_call() -> None:
    trips = [
        ["redis", 1, 10], ["postgres", 2, 20], ["upstream", 3, 30], ["postgres", 2, 40],
        ["postgres", 2, 110], ["postgres", 2, 115], ["upstream", 3, 120],
    ]  # fmt: skip
    split = latency_proxy.split_trips(trips, [0, 100])
    assert split == {
        "postgres": (1.5, 0.5),
        "redis": (0.5, 0.0),
        latency_proxy.WAITS: (2.0, 0.5),  # one after the other: a wait each
        latency_proxy.WAITED_MS: (0.0, 0.0),  # trips without an end took no time
    }


def test_round_trips_in_flight_together_cost_one_wait() -> None:
    trips = [
        # Request 1: Redis and PostgreSQL overlapped, then the upstream call, then a settle.
        ["redis", 1, 10, 30], ["postgres", 2, 12, 25], ["upstream", 3, 40, 50],
        ["postgres", 2, 60, 70],
        # Request 2: the key looked up, then both overlapped, then the upstream call.
        ["postgres", 2, 110, 120], ["postgres", 2, 121, 140], ["redis", 1, 122, 135],
        ["upstream", 3, 150, 160],
    ]  # fmt: skip
    split = latency_proxy.split_trips(trips, [0, 100])
    assert split[latency_proxy.WAITS] == (1.5, 0.5)
    assert (split["postgres"], split["redis"]) == ((1.5, 0.5), (1.0, 0.0))


def test_time_waited_counts_overlapped_round_trips_once() -> None:
    trips = [
        # Request 1: 10-30 with 12-25 inside it (20 ns before), a settle of 10 ns after.
        ["redis", 1, 10, 30], ["postgres", 2, 12, 25], ["upstream", 3, 40, 50],
        ["postgres", 2, 60, 70],
        # Request 2: 110-120, then 121-140 with 122-150 overlapping it (39 ns), none after.
        ["postgres", 2, 110, 120], ["postgres", 2, 121, 140], ["redis", 1, 122, 150],
        ["upstream", 3, 160, 170],
        # Request 3: 30 ns before in two parts, 5 after.
        ["postgres", 2, 210, 225], ["redis", 1, 230, 245], ["upstream", 3, 250, 260],
        ["postgres", 2, 270, 275],
    ]  # fmt: skip
    split = latency_proxy.split_trips(trips, [0, 100, 200])
    # Medians over the three requests: before 20, 39, 30 -> 30; after 10, 0, 5 -> 5.
    assert split[latency_proxy.WAITED_MS] == (30 / 1e6, 5 / 1e6)
