"""A fake Resend API: `POST /emails`, as the official `resend` package calls it.

Speaks Resend's REST API: `Authorization: Bearer <key>` (401 `missing_api_key` without
one, 403 `invalid_api_key` with a wrong one), a JSON body `{from, to, subject, html,
text, ...}` (422 `validation_error` without from/to/subject), and the answer
`{"id": "<uuid>"}`. The `Idempotency-Key` header is honoured as Resend does: the same key
with the same body answers the first e-mail's id and sends nothing; with another body,
409 `invalid_idempotent_request`. Errors are `{"statusCode", "name", "message"}`.

`fail_next(n, status)` makes the next n calls fail; with `after_sending=True` the e-mail
is accepted (and its idempotency key recorded) before the error is answered, as when an
answer is lost on the way back.

    with serve("re_test_key") as fake:
        resend.api_url, resend.api_key = fake.url, fake.api_key
"""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

_ERROR_NAMES = {
    401: "missing_api_key",
    403: "invalid_api_key",
    409: "invalid_idempotent_request",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "internal_server_error",
}


@dataclass
class _Failures:
    count: int = 0
    status: int = 500
    after_sending: bool = False


@dataclass
class FakeResend:
    """What the fake received and sent; shared with its request handlers."""

    api_key: str
    url: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)  # e-mails, with their "id"
    requests: list[dict[str, Any]] = field(default_factory=list)  # every POST /emails
    _keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (body, id)
    _failures: _Failures = field(default_factory=_Failures)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 500, *, after_sending: bool = False) -> None:
        with self.lock:
            self._failures = _Failures(count, status, after_sending)

    def sent_to(self, address: str) -> list[dict[str, Any]]:
        with self.lock:
            return [mail for mail in self.sent if address in mail["to"]]

    def post_email(self, key: str | None, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Handle one `POST /emails`: (status, JSON answer)."""
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(422, "The request body is not valid JSON.")
        missing = [name for name in ("from", "to", "subject") if not body.get(name)]
        with self.lock:
            self.requests.append({"idempotency_key": key, "body": body})
            failure = self._failures
            failing = failure.count > 0
            if failing:
                failure.count -= 1
                if not failure.after_sending:
                    return _error(failure.status, "Something went wrong.")
            if missing:
                return _error(422, f"Missing `{missing[0]}` field.")
            answer = self._accept(key, raw, body)
            if failing:  # accepted, but the answer never reaches the client
                return _error(failure.status, "Something went wrong.")
            return answer

    def _accept(
        self, key: str | None, raw: bytes, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        text = raw.decode()
        if key is not None and key in self._keys:
            first_body, first_id = self._keys[key]
            if first_body != text:
                return _error(409, "Same idempotency key used with a different request.")
            return 200, {"id": first_id}
        email_id = str(uuid.uuid4())
        self.sent.append({**body, "id": email_id, "to": _list(body["to"])})
        if key is not None:
            self._keys[key] = (text, email_id)
        return 200, {"id": email_id}


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "statusCode": status,
        "name": _ERROR_NAMES.get(status, "error"),
        "message": message,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        fake = self.server.fake
        if self.path.rstrip("/") != "/emails":
            return self._reply(*_error(404, f"Unknown path {self.path}."))
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._reply(*_error(401, "Missing API key in the authorization header."))
        if auth.removeprefix("Bearer ") != fake.api_key:
            return self._reply(*_error(403, "API key is invalid."))
        self._reply(*fake.post_email(self.headers.get("Idempotency-Key"), raw))

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeResend) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def serve(api_key: str = "re_test_fake_key") -> Iterator[FakeResend]:
    """Run the fake on 127.0.0.1 (a free port) in a thread; yield it (its `url` set)."""
    fake = FakeResend(api_key)
    server = _Server(fake)
    thread = threading.Thread(target=server.serve_forever, name="fake-resend", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    fake.url = f"http://{host!s}:{port}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
