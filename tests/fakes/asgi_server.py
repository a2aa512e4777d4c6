"""Serve an ASGI app on a real local socket, in a thread (uvicorn), for the length of a test."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.types import ASGIApp


@contextmanager
def serve_asgi(app: ASGIApp) -> Iterator[int]:
    """Run `app` on 127.0.0.1 at a free port; yield the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        lifespan="auto",
        log_config=None,
        backlog=1024,
        proxy_headers=False,  # as `gatewayz dev` serves: the peer address is the client IP
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.005)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = server.force_exit = True
        thread.join(timeout=10)
        sock.close()
