"""A requests-per-minute limit of N lets exactly N through across two gateway processes
that share Redis (DESIGN §3 step 3)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.conftest import MODEL, new_account
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Upstreams

LIMIT = 5


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_gateways(gateway: str, upstreams: Upstreams, redis_url: str) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "OPENROUTER_BASE_URL": upstreams.primary.base_url,
        "FEATHERLESS_BASE_URL": upstreams.secondary.base_url,
    }
    ports = [_port(), _port()]
    app_dir = str(ROOT / "functions" / "chat")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", app_dir,
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
        )
        for port in ports
    ]  # fmt: skip
    try:
        for port in ports:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "a gateway process did not start"
                time.sleep(0.1)
        yield [f"http://127.0.0.1:{port}/v1" for port in ports]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def test_a_limit_of_n_lets_exactly_n_through_across_two_processes(two_gateways: list[str]) -> None:
    account = new_account(requests_per_minute=LIMIT)
    headers = {"authorization": f"Bearer {account.secret}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    statuses = [
        httpx.post(
            f"{two_gateways[i % 2]}/chat/completions", json=body, headers=headers, timeout=30
        ).status_code
        for i in range(2 * LIMIT)
    ]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == LIMIT
    # Both processes served some and refused some: the count really was shared.
    assert {statuses[i] for i in range(0, 2 * LIMIT, 2)} | {
        statuses[i] for i in range(1, 2 * LIMIT, 2)
    } == {200, 429}
