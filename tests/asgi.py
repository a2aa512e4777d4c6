"""An ASGI request as uvicorn hands it to an app, for tests that call a function's app
directly and watch each message it sends."""

from __future__ import annotations

from typing import Any


def chat_completion_scope(secret: str) -> dict[str, Any]:
    """The scope of `POST /v1/chat/completions` with `secret` as the bearer key."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080), "state": {},
        "headers": [(b"authorization", f"Bearer {secret}".encode()),
                    (b"content-type", b"application/json")],
    }  # fmt: skip
