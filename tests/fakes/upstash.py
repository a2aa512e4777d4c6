"""A fake Upstash Redis REST API, backed by a real Redis.

Speaks what the official clients use: `POST /` with a JSON command array answers
`{"result": ...}`; `POST /pipeline` and `POST /multi-exec` with an array of commands answer
one `{"result"|"error": ...}` per command. A failed command is HTTP 400 `{"error": "ERR ..."}`,
a missing or wrong token HTTP 401 `{"error": "WRONGPASS invalid or missing auth token"}`.
With `Upstash-Encoding: base64` string results are base64 (except the status "OK"), as
Upstash sends them; errors and integers are never encoded.

    with serve("redis://127.0.0.1:6379/0") as (url, token):
        upstash_redis.Redis(url=url, token=token).set("k", "v")
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import redis

if TYPE_CHECKING:
    from collections.abc import Iterator

UNAUTHORIZED = "WRONGPASS invalid or missing auth token"


def _encode(value: Any, b64: bool) -> Any:
    """A RESP reply as Upstash puts it in JSON."""
    if isinstance(value, bytes):
        if b64 and value != b"OK":
            return base64.b64encode(value).decode()
        return value.decode(errors="replace")
    if isinstance(value, list):
        return [_encode(item, b64) for item in value]
    if isinstance(value, redis.ResponseError):  # an error inside a transaction's reply
        return _error_text(value)
    return value  # int or None


def _error_text(exc: redis.RedisError) -> str:
    # redis-py strips the error code ("NOSCRIPT", "ERR", ...) into `status_code`.
    code = getattr(exc, "status_code", None)
    return f"{code} {exc}" if code else str(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as against the real service
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = urlsplit(self.path)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        token = token or parse_qs(parts.query).get("_token", [""])[0]
        if not secrets.compare_digest(token, self.server.token):
            return self._reply(401, {"error": UNAUTHORIZED})
        b64 = self.headers.get("Upstash-Encoding", "").lower() == "base64"
        try:
            commands = json.loads(body)
        except ValueError:
            return self._reply(400, {"error": "ERR failed to parse command"})
        if parts.path.rstrip("/") == "":
            try:
                result = self.server.redis.execute_command(*map(_arg, commands))  # type: ignore[no-untyped-call]
            except (redis.ResponseError, redis.DataError) as exc:
                return self._reply(400, {"error": _error_text(exc)})
            return self._reply(200, {"result": _encode(result, b64)})
        if parts.path in ("/pipeline", "/multi-exec"):
            pipe = self.server.redis.pipeline(transaction=parts.path == "/multi-exec")
            for command in commands:
                pipe.execute_command(*map(_arg, command))  # type: ignore[no-untyped-call]
            results = pipe.execute(raise_on_error=False)
            return self._reply(200, [_wrap(r, b64) for r in results])
        return self._reply(404, {"error": f"ERR unknown path {parts.path}"})

    def _reply(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


def _arg(value: object) -> object:
    # JSON gives numbers and strings; anything else (nested JSON) is sent as its JSON text.
    return value if isinstance(value, str | int | float) else json.dumps(value)


def _wrap(result: object, b64: bool) -> dict[str, Any]:
    if isinstance(result, redis.ResponseError):
        return {"error": _error_text(result)}
    return {"result": _encode(result, b64)}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 resets bursts of concurrent clients

    def __init__(self, redis_url: str, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.redis = redis.Redis.from_url(redis_url)
        # Raw RESP replies (bytes, ints, lists), as the real service relays them.
        self.redis.response_callbacks.clear()


@contextmanager
def serve(redis_url: str, token: str | None = None) -> Iterator[tuple[str, str]]:
    """Run the fake on 127.0.0.1 (a free port) in a thread; yield its (url, token)."""
    token = token or secrets.token_urlsafe(24)
    server = _Server(redis_url, token)
    thread = threading.Thread(target=server.serve_forever, name="fake-upstash", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}", token
    finally:
        server.shutdown()
        server.server_close()
        server.redis.close()
