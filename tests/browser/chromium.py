"""Headless Chromium (Debian's `chromium` package) driven over the DevTools protocol.

`launch()` starts a browser with a throw-away profile; `open_page()` loads a URL in it,
waits for the page's load event and returns what a JavaScript expression (a promise is
awaited) evaluates to. The protocol is spoken over aiohttp's websocket client, which the
gateway already depends on, so no browser driver package is needed.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BINARIES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
STARTUP_S = 30  # a bound on waiting, never an assertion about speed


def find() -> str | None:
    """The path of a Chromium on this machine, if there is one."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


class PageError(RuntimeError):
    """The page threw, or its expression did not evaluate."""


@contextmanager
def launch(binary: str, profile: Path) -> Iterator[int]:
    """Run headless `binary` with its profile in `profile`; yield its DevTools port."""
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",  # tests run as root in CI, where the sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield _devtools_port(process, profile / "DevToolsActivePort")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _devtools_port(process: subprocess.Popen[bytes], announced: Path) -> int:
    """The port Chromium writes to `DevToolsActivePort` once it listens."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        lines = announced.read_text().splitlines() if announced.exists() else []
        if lines and lines[0].isdigit():
            return int(lines[0])
        time.sleep(0.05)
    raise RuntimeError("chromium did not open its DevTools port")


async def open_page(port: int, url: str, expression: str, *, timeout_s: float = 60) -> Any:
    """Load `url` in the browser's tab and return the value of `expression` there."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as listing:
            targets = await listing.json()
        tab = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            devtools = _DevTools(ws)
            async with asyncio.timeout(timeout_s):
                await devtools.call("Page.enable")
                await devtools.call("Runtime.enable")
                await devtools.call("Page.navigate", {"url": url})
                await devtools.until("Page.loadEventFired")
                result = await devtools.call(
                    "Runtime.evaluate",
                    {"expression": expression, "awaitPromise": True, "returnByValue": True},
                )
    if "exceptionDetails" in result:
        raise PageError(f"{result['exceptionDetails']}; page errors: {devtools.errors}")
    return result["result"].get("value")


class _DevTools:
    """One DevTools websocket: numbered calls, and the events seen while waiting."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[str] = []
        self.errors: list[Any] = []

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params or {}})
        while True:
            message = await self._next()
            if message.get("id") == call_id:
                if "error" in message:
                    raise PageError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def until(self, event: str) -> None:
        while event not in self.events:
            await self._next()

    async def _next(self) -> dict[str, Any]:
        message: dict[str, Any] = await self.ws.receive_json()
        if "method" in message:
            self.events.append(message["method"])
            if message["method"] == "Runtime.exceptionThrown":
                self.errors.append(message["params"]["exceptionDetails"])
        return message
