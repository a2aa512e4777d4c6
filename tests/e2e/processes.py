"""Chat functions in processes of their own (uvicorn, as `run.sh` serves them under the
Lambda Web Adapter), side by side as Lambda runs them, in front of the fake providers of
tests/e2e/conftest.py. For tests that need a real process: to kill it, to give it
settings of its own, to read what it logs, or to race real database connections (each
process has its own, and its own rate-limit store unless `REDIS_URL` is given)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Upstreams

START_TIMEOUT_S = 60


@dataclass
class ChatProcess:
    """A running chat function: its base URL (`.../v1`), process and log file."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no cleanup, no settlement, as when Lambda kills a function."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chat_processes(
    count: int, upstreams: Upstreams, **settings: str
) -> Iterator[list[ChatProcess]]:
    """Start `count` chat functions at once, with this process's environment (the
    `gateway` fixture's settings, DATABASE_URL) and `settings` on top; yield them once
    each serves `/health`; stop those still alive at the end."""
    env = {
        **os.environ,
        "OPENROUTER_BASE_URL": upstreams.primary.base_url,
        "FEATHERLESS_BASE_URL": upstreams.secondary.base_url,
        **settings,
    }
    running = [_start(env) for _ in range(count)]
    try:
        for chat in running:
            _wait_until_serving(chat)
        yield running
    finally:
        for chat in running:
            if chat.process.poll() is None:
                chat.process.terminate()
        for chat in running:
            chat.process.wait(timeout=10)
            chat.log.unlink(missing_ok=True)


@contextmanager
def chat_process(upstreams: Upstreams, **settings: str) -> Iterator[ChatProcess]:
    """One chat function, as `chat_processes` starts them."""
    with chat_processes(1, upstreams, **settings) as (chat,):
        yield chat


def _start(env: dict[str, str]) -> ChatProcess:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="gatewayz-chat-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--app-dir",
             str(ROOT / "functions" / "chat"), "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return ChatProcess(f"http://127.0.0.1:{port}/v1", process, log)


def _wait_until_serving(chat: ChatProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    health = chat.base_url.removesuffix("/v1") + "/health"
    while True:
        assert chat.process.poll() is None, f"the chat process exited:\n{chat.logged()}"
        try:
            if httpx.get(health, timeout=2).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the chat process did not start:\n{chat.logged()}"
        time.sleep(0.05)  # polling a process's start-up, not synchronising a test
