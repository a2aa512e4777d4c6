"""Pytest fixtures for the rate-limit stores: a real Redis, the fake Upstash, every backend.

Loaded as a plugin from `tests/conftest.py`. `TEST_REDIS_URL` picks the Redis; unset, a
Redis on localhost is used when one answers, else the tests that need it are skipped.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest
import redis

from gatewayz.ratelimit.memory import MemoryStore
from gatewayz.ratelimit.redis import RedisStore
from gatewayz.ratelimit.upstash import UpstashStore
from tests.fakes.upstash import serve

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from gatewayz.ratelimit import Store

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
BACKENDS = ["memory", "redis", "upstash"]
SHARED_BACKENDS = ["redis", "upstash"]  # stores that several processes can share


@pytest.fixture(scope="session")
def redis_url() -> str:
    """`TEST_REDIS_URL`, else a Redis on localhost that answers PING; skips otherwise."""
    if url := os.environ.get("TEST_REDIS_URL"):
        return url
    client = redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis: set TEST_REDIS_URL")
    finally:
        client.close()
    return LOCAL_REDIS


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the test Redis, to look behind a store's back."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def upstash(redis_url: str) -> Iterator[tuple[str, str]]:
    """The fake Upstash REST server on the test Redis: (url, token)."""
    with serve(redis_url) as server:
        yield server


@pytest.fixture
def rl_prefix() -> str:
    """A unique key prefix for one test, in one hash tag as callers use on Redis Cluster.

    Nothing to clean up: every counter a store writes expires with its window.
    """
    return f"test:rl:{{{uuid.uuid4().hex}}}:"


def _factory(request: pytest.FixtureRequest, backend: str) -> Callable[[], Store]:
    if backend == "memory":
        return MemoryStore
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        return lambda: RedisStore.from_url(url)
    url, token = request.getfixturevalue("upstash")
    return lambda: UpstashStore(url, token)


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest) -> Callable[[], Store]:
    """Builds stores of one backend; each test runs once per backend."""
    return _factory(request, request.param)


@pytest.fixture(params=SHARED_BACKENDS)
def shared_store_factory(request: pytest.FixtureRequest) -> Callable[[], Store]:
    """Builds independent stores (think: processes) that share one backend."""
    return _factory(request, request.param)


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    """A store of each backend in turn."""
    return store_factory()
