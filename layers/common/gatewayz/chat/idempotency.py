"""Idempotent retries (docs/api.md, idempotent retries): a request sent with an
`Idempotency-Key` runs once per account and key; a retry of it within 24 hours gets the
first answer again, charged nothing and recorded nowhere.

`guard` wraps a route's entry function (one line per route). The same key with the same
route and body replays the first answer (`Idempotent-Replayed: true`): the JSON body, or
a stream's events as it sent them. While the first request runs, a retry gets 409
`idempotency_in_progress` with `Retry-After`, which the OpenAI SDKs retry; the key with
another body is 409 `idempotency_key_reused`, which they do not. A first request that
failed before its answer began keeps nothing, so its retry runs again. Without the
header nothing here runs, not even a query.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from gatewayz import config, errors, http
from gatewayz.chat import idempotency_store as store
from gatewayz.identity import access
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import Message, Receive, Scope, Send

HEADER = "idempotency-key"
REPLAYED = "idempotent-replayed"
SESSION_HEADER = "x-session-id"  # chat history's (gatewayz/history/injection.py)
TTL_S = 24 * 3600
MAX_KEPT_BYTES = 4 * 1024 * 1024  # as the table allows; larger answers are not kept
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces (Stripe's 255)
_SKIPPED_HEADERS = {"content-length"}  # recomputed on replay


async def guard(
    request: Request, scopes: tuple[str, ...], serve: Callable[[], Awaitable[Response]]
) -> Response:
    """`serve()`, run at most once per account and `Idempotency-Key`.

    Raises:
        InvalidRequest: the key is empty, longer than 255 characters or not printable ASCII.
        IdempotencyKeyReused / IdempotentAnswerNotKept: 409, a retry cannot help.
        IdempotencyInProgress: 409, the first request is still running.
        what `serve()` and `access.authorize` raise.
    """
    key = http.request_headers(request.scope).get(HEADER)
    if key is None:
        return await serve()
    # Who asks first: a caller without a valid key learns nothing about stored answers.
    caller = access.authorize(request, scopes)
    if not _KEY.fullmatch(key):
        raise errors.InvalidRequest(
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters "
            "without spaces.",
            param="Idempotency-Key",
        )
    # The same body can ask for different answers: the chat history it names is the
    # caller's own, and a session may be named by a header.
    context = f"{caller.user_id}\n{http.request_headers(request.scope).get(SESSION_HEADER, '')}"
    digest = fingerprint(request.url.path, await request.body(), context)
    held = store.claim(
        caller.account_id,
        key,
        digest,
        lease_s=config.get_settings().hold_ttl_s,
        ttl_s=TTL_S,
    )
    if isinstance(held, store.Existing):
        return _replay(held, digest)
    try:
        response = await serve()
    except BaseException:
        store.release(held)
        raise
    return _Recording(response, held)


def fingerprint(path: str, body: bytes, context: str = "") -> bytes:
    """SHA-256 of the route, `context` (who asks, and the chat session a header names) and
    the body as canonical JSON (key order and spacing do not matter), or of the raw bytes
    when the body is not JSON."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    return hashlib.sha256(f"{path}\n{context}\n".encode() + canonical).digest()


def _replay(held: store.Existing, digest: bytes) -> Response:
    if held.request_hash != digest:
        raise errors.IdempotencyKeyReused(
            "This Idempotency-Key was already used for another request; "
            "use a new key for a new request.",
            param="Idempotency-Key",
        )
    if not held.completed or held.status is None:
        raise errors.IdempotencyInProgress(
            "The first request with this Idempotency-Key is still running; retry shortly.",
            headers={"retry-after": "1", "x-should-retry": "true"},
        )
    if held.body is None:
        raise errors.IdempotentAnswerNotKept(
            "The first answer for this Idempotency-Key was too large to keep for a replay; "
            "it was charged once. Use a new key to ask again.",
            param="Idempotency-Key",
        )
    return Response(held.body, status_code=held.status, headers={**held.headers, REPLAYED: "true"})


class _Recording(Response):
    """Sends the route's response on unchanged and keeps what it sent: the answer once it
    began with a success, else nothing (the key is given back)."""

    def __init__(self, inner: Response, held: store.Claim) -> None:
        super().__init__(status_code=inner.status_code)
        self.inner, self.held = inner, held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started: dict[str, Any] = {}
        parts: list[bytes] = []
        size = 0
        kept = False

        async def keep(message: Message) -> None:
            nonlocal size, kept
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body" and not kept:
                if size <= MAX_KEPT_BYTES:
                    parts.append(message.get("body", b""))
                    size += len(parts[-1])
                if not message.get("more_body", False):
                    # Kept before the client sees the end, so its retry finds the answer.
                    kept = True
                    self._keep(started, _joined(parts, size))
            await send(message)

        try:
            await self.inner(scope, receive, keep)
        finally:
            if not kept:  # an exception, or a client that left mid-stream
                self._keep(started, _joined(parts, size))
        if self.background is not None:
            await self.background()

    def _keep(self, started: dict[str, Any], body: bytes | None) -> None:
        status = int(started.get("status", 500))
        try:
            # A stream once begun is charged whatever comes after: kept, even cut short.
            if not started or status >= 400:
                store.release(self.held)
                return
            headers = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in started.get("headers", [])
                if name.decode("latin-1").lower() not in _SKIPPED_HEADERS
            }
            store.complete(self.held, status, headers, body)
        except Exception:  # noqa: BLE001 - the answer still goes out; the lease bounds the rest
            get_logger().exception("keeping an idempotent answer failed")


def _joined(parts: list[bytes], size: int) -> bytes | None:
    return b"".join(parts) if size <= MAX_KEPT_BYTES else None
