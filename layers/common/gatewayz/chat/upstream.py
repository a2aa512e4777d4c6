"""One HTTP exchange with a provider (docs/architecture.md, step 6).

aiohttp, one session per event loop, kept warm across the requests of a warm function:
it costs a fifth of httpx's CPU per request (bench/README.md). Callers see `Reply` and
the two exceptions below, never aiohttp's types, so the offline mock (which answers in
process, without a socket) looks exactly like a provider.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import aiohttp
    import yarl


class Timeout(Exception):
    """The provider did not connect, or went silent, within the limits."""


class Broken(Exception):
    """The connection failed or broke off before the answer was complete."""


@dataclass(frozen=True, slots=True)
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
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status = response.status
        self._response = response
        self.retry_after_s = retry_after(
            response.headers.get("retry-after-ms"), response.headers.get("retry-after")
        )

    async def read(self) -> bytes:
        import aiohttp

        try:
            return await self._response.read()
        except TimeoutError:
            raise Timeout("the provider went silent") from None
        except aiohttp.ClientError as exc:
            raise Broken(type(exc).__name__) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise Timeout("the provider went silent") from None
        except aiohttp.ClientError as exc:
            raise Broken(type(exc).__name__) from None

    async def close(self) -> None:
        self._response.close()


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
    import aiohttp

    try:
        response = await session().post(
            _url(base_url, path), data=body, headers=headers, timeout=_timeout(limits)
        )
    except TimeoutError:
        raise Timeout("no answer in time") from None
    except aiohttp.ClientError as exc:
        raise Broken(type(exc).__name__) from None
    return _NetworkReply(response)


@functools.lru_cache(maxsize=64)
def _url(base_url: str, path: str) -> yarl.URL:
    """Parsed once per provider and path, not per request (aiohttp parses a str)."""
    import yarl

    return yarl.URL(base_url + path)


@functools.lru_cache(maxsize=64)
def _timeout(limits: Limits) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(total=None, connect=limits.connect_s, sock_read=limits.read_s)


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


async def close_session() -> None:
    """Close this event loop's session (when a server shuts down)."""
    current = _sessions.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.close()


def session() -> aiohttp.ClientSession:
    """This event loop's session: its connection pool outlives a request."""
    import aiohttp

    loop = asyncio.get_running_loop()
    current = _sessions.get(loop)
    if current is None or current.closed:
        current = _sessions[loop] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=300),
            skip_auto_headers=("User-Agent",),
            # Providers' cookies are never sent back: no cookie work on any request.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
    return current
