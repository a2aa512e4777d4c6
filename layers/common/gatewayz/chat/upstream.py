"""One HTTP exchange with a provider (docs/architecture.md, step 6).

Over `provider_http`'s connections, one pool per event loop, kept alive across the
requests of a warm function. Callers see `Reply` and the two exceptions, never the
connection, so the offline mock (which answers in process, without a socket) looks
exactly like a provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz.chat import provider_http
from gatewayz.chat.provider_http import Broken as Broken  # what callers catch
from gatewayz.chat.provider_http import Timeout as Timeout
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


@record
class Limits:
    """Per attempt: to connect, and between two reads of the answer."""

    connect_s: float
    read_s: float


class Reply:
    """A provider's answer, read as it arrives. `close()` it when done."""

    status: int
    retry_after_s: float | None = None  # what a 429 or 503 asked us to wait, if it said

    async def read(self) -> bytes:
        """The whole body. Raises Timeout or Broken."""
        raise NotImplementedError

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Raises Timeout or Broken while iterating."""
        raise NotImplementedError

    async def close(self) -> None:
        """Let go of the connection (unread bytes are discarded)."""


class LocalReply(Reply):
    """An answer made in this process (the offline mock provider)."""

    def __init__(self, status: int, body: bytes | AsyncIterator[bytes]) -> None:
        self.status = status
        self._body = body
        # What its Content-Type would say over HTTP: a stream of events, or one JSON body.
        self.content_type = "application/json" if isinstance(body, bytes) else "text/event-stream"

    async def read(self) -> bytes:
        if isinstance(self._body, bytes):
            return self._body
        return b"".join([chunk async for chunk in self._body])

    async def chunks(self) -> AsyncIterator[bytes]:
        if isinstance(self._body, bytes):
            yield self._body
            return
        async for chunk in self._body:
            yield chunk


class _NetworkReply(Reply):
    def __init__(self, connection: provider_http.Connection, pool: provider_http.Pool) -> None:
        self.status = connection.status
        self._connection = connection
        self._pool = pool
        headers = connection.headers
        self.content_type = headers.get(b"content-type", b"").decode("latin-1")
        if b"retry-after-ms" in headers or b"retry-after" in headers:
            self.retry_after_s = retry_after(
                _text(headers.get(b"retry-after-ms")), _text(headers.get(b"retry-after"))
            )

    async def read(self) -> bytes:
        return await self._connection.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._connection.chunks()

    async def close(self) -> None:
        self._connection.release(self._pool)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def retry_after(millis: str | None, value: str | None) -> float | None:
    """Seconds to wait from `Retry-After-Ms` or `Retry-After` (seconds or an HTTP date)."""
    if millis is None and value is None:  # nearly every answer
        return None
    import time
    from email.utils import parsedate_to_datetime

    for raw, scale in ((millis, 1000.0), (value, 1.0)):
        if raw is None:
            continue
        try:
            seconds = float(raw) / scale
        except ValueError:
            try:
                seconds = parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        if seconds == seconds and seconds >= 0:  # not NaN
            return min(seconds, 86_400.0)
        return 0.0
    return None


async def post(
    base_url: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    limits: Limits,
    local: Callable[[str, bytes], Awaitable[Reply]] | None = None,
) -> Reply:
    """POST `body` to `base_url + path`, or hand it to `local` (a provider that answers
    in process, the offline mock); the reply's headers have arrived.

    Raises:
        Timeout: no connection, or no answer, within `limits`.
        Broken: the connection failed.
    """
    if local is not None:
        return await local(path, body)
    pool = provider_http.pool()
    connection = await pool.post(base_url + path, headers, body, limits.connect_s, limits.read_s)
    return _NetworkReply(connection, pool)


async def close_pool() -> None:
    """Close this event loop's idle provider connections (when a server shuts down)."""
    provider_http.close_pool()


def open_pool() -> None:
    """Open this event loop's pool of provider connections, and the TLS context it
    uses (the warm-up calls it: loading the system's CAs takes milliseconds)."""
    provider_http.pool().tls()
