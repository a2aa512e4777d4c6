"""The chat function in a process of its own (uvicorn, as `run.sh` serves it in Lambda),
for tests that need a real process: to kill it, to give it settings of its own, to read
what it logs, or to race real database connections."""

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
def chat_process(upstreams: Upstreams, **settings: str) -> Iterator[ChatProcess]:
    """Start the chat function in front of the fake providers, with extra `settings`
    (environment variables); stop it (if still alive) at the end."""
    port = free_port()
    env = {
        **os.environ,
        "OPENROUTER_BASE_URL": upstreams.primary.base_url,
        "FEATHERLESS_BASE_URL": upstreams.secondary.base_url,
        **settings,
    }
    log = Path(tempfile.mkstemp(prefix="gatewayz-chat-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--app-dir",
             str(ROOT / "functions" / "chat"), "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = ChatProcess(f"http://127.0.0.1:{port}/v1", process, log)
    try:
        _wait_until_serving(running)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        log.unlink(missing_ok=True)


def _wait_until_serving(running: ChatProcess) -> None:
    deadline = time.monotonic() + 30
    health = running.base_url.removesuffix("/v1") + "/health"
    while True:
        assert running.process.poll() is None, f"the chat process exited:\n{running.logged()}"
        try:
            if httpx.get(health, timeout=2).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the chat process did not start"
        time.sleep(0.05)
