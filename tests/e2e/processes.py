"""Chat functions in processes of their own, side by side as Lambda runs them: each
process has its own database connection (and its own rate-limit store unless `REDIS_URL`
is given), in front of the fake providers of tests/e2e/conftest.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Upstreams

START_TIMEOUT_S = 60


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chat_processes(count: int, upstreams: Upstreams, **env: str) -> Iterator[list[str]]:
    """Start `count` uvicorn processes serving functions/chat/app.py; yield their base URLs
    (`.../v1`) once each answers `/health`. The environment is this process's (the
    `gateway` fixture's settings and DATABASE_URL) with `env` on top."""
    environ = {
        **os.environ,
        "OPENROUTER_BASE_URL": upstreams.primary.base_url,
        "FEATHERLESS_BASE_URL": upstreams.secondary.base_url,
        **env,
    }
    ports = [_port() for _ in range(count)]
    app_dir = str(ROOT / "functions" / "chat")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", app_dir,
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=environ,
        )
        for port in ports
    ]  # fmt: skip
    try:
        for proc, port in zip(procs, ports, strict=True):
            _wait_until_healthy(proc, port)
        yield [f"http://127.0.0.1:{port}/v1" for port in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _wait_until_healthy(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert proc.poll() is None, f"the chat process on port {port} exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the chat process on port {port} did not start"
        time.sleep(0.1)  # polling a process's start-up, not synchronising a test
