"""HTTP/1.1 to the providers: kept-alive connections, one exchange at a time on each.

Written by hand because aiohttp took a fifth of a completion's CPU (bench/README.md):
its request and response objects, header multidicts, cookie, redirect and tracing
machinery, and a timer moved on every read, are generality a provider call never uses.
This client writes a request in one `write`, parses the answer with httptools (llhttp,
the parser uvicorn serves with) and hands the body on as it arrives. It speaks what a
provider's API needs and no more: POST over TLS or TCP; Content-Length, chunked and
close-delimited bodies; gzip or deflate if a server compresses unasked; interim 1xx
answers skipped. No redirects, proxies or cookies.
"""

from __future__ import annotations

import asyncio
import functools
import select
import ssl
import weakref
import zlib
from collections import deque
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

IDLE_S = 15.0  # an idle connection is reused within this, as aiohttp's keep-alive does
CHECK_IDLE_S = 1.0  # idle longer: look for the server's close first (a thawed Lambda)
KEEP_IDLE = 32  # idle connections kept per origin
HIGH_WATER = 256 * 1024  # unread body bytes at which reading pauses
_HEADERS = {  # the answer's headers anything reads
    *(b"content-type", b"content-length", b"transfer-encoding", b"content-encoding"),
    *(b"retry-after", b"retry-after-ms"),
}


class Timeout(Exception):
    """The provider did not connect, or went silent, within the limits."""


class Broken(Exception):
    """The connection failed or broke off before the answer was complete."""


class Origin(NamedTuple):
    host: str
    port: int
    tls: bool


@functools.lru_cache(maxsize=64)
def target(url: str) -> tuple[Origin, bytes]:
    """The origin to connect to and the request's first lines, parsed once per URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    tls = parts.scheme == "https"
    origin = Origin(parts.hostname, parts.port or (443 if tls else 80), tls)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]  # never a URL's credentials in a header
    head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\naccept-encoding: identity\r\n"
    return origin, head.encode("ascii")  # an operator's URL: non-ASCII is refused


def request_bytes(head: bytes, headers: dict[str, str], body: bytes) -> bytes:
    """The whole request; Broken if a header would break the request's framing."""
    block = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if block.count("\n") != len(headers) or block.count("\r") != len(headers):
        raise Broken("a header holds a line break")  # e.g. an account's own API key
    try:
        encoded = block.encode("latin-1")
    except UnicodeEncodeError:
        raise Broken("a header is not Latin-1") from None
    return b"%s%scontent-length: %d\r\n\r\n%s" % (head, encoded, len(body), body)


class Connection(asyncio.Protocol):
    """One connection to a provider; the state of its current exchange."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self._loop = loop
        import httptools  # here: importing the module must not load it (a lean cold start)

        self.origin = origin
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._active = False
        self._reset(0.0)

    def _reset(self, read_s: float) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self._body: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._until_close = False
        self._interim = False
        self._reusable = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._whole = False
        self._read_s = read_s
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._decoder: zlib._Decompress | None = None

    # -- the exchange, as its caller sees it

    def send(self, data: bytes, read_s: float) -> None:
        assert self.transport is not None
        self._reset(read_s)
        self._active = True
        self._last = self._loop.time()
        self._timer = self._loop.call_at(self._last + read_s, self._silence)
        self.transport.write(data)

    async def head(self) -> None:
        """Until the answer's status and headers have arrived."""
        while not self.status:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: all that is buffered at each step, one bytes."""
        while True:
            if self._body:
                yield self._take()
            elif self._done:
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait()

    async def read(self) -> bytes:
        """The whole body: buffered as it comes, reading never paused."""
        self._whole = True
        self._resume()
        while not self._done:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._take()

    def release(self, pool: Pool) -> None:
        """Back to the pool if the exchange ended cleanly, else closed."""
        self._active = False
        self._stop_timer()
        if self._done and self._reusable and not self.closed:
            self._resume()
            self._body.clear()
            self.idle_since = self._loop.time()
            pool.put_back(self)
        else:
            self.abort()

    def abort(self) -> None:
        self._active = False
        self._stop_timer()
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def hung_up(self) -> bool:
        """Whether the socket has something to read while idle: the server's close
        (or, in TLS, its close_notify), which a frozen event loop did not see."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport else None
        if sock is None or transport.is_closing():  # type: ignore[union-attr]
            return True
        poller = select.poll()  # not select(): a descriptor may be above 1023
        try:
            poller.register(sock.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def _take(self) -> bytes:
        data = self._body.popleft() if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._size = 0
        self._resume()
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
                if self._done:
                    data += self._decoder.flush()
            except zlib.error:
                raise Broken("the answer's compression is broken") from None
        return data

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._last = self._loop.time()  # the provider's silence counts from here
            self.transport.resume_reading()  # type: ignore[union-attr]

    async def _wait(self) -> None:
        self._waiter = waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self._error is None and not self._done:
            self._error = error
        self._stop_timer()
        self._wake()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _silence(self) -> None:
        # One timer an exchange, moved only when it fires: a read does not touch it.
        self._timer = None
        if self._done or self._error is not None:
            return
        now = self._loop.time()
        due = self._last + self._read_s
        if self._paused:  # the reader is behind, not the provider
            due = now + self._read_s
        if now < due:
            self._timer = self._loop.call_at(due, self._silence)
            return
        self._fail(Timeout("the provider went silent"))
        self.abort()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._active or self._done:  # a server that talks out of turn
            self._reusable = False
            if not self._active:
                self.abort()
            return
        self._last = self._loop.time()
        try:
            self._parser.feed_data(data)
        except Exception:  # noqa: BLE001 (httptools' HttpParserError or HttpParserUpgrade)
            self._fail(Broken("the answer is not HTTP/1.1"))
            self.abort()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._active or self._done:
            return
        if self.status and self._until_close:
            self._done = True  # a body without a length ends with the connection
            self._stop_timer()
            self._wake()
        else:
            self._fail(Broken("the provider closed the connection"))

    # -- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _HEADERS:
            self.headers[name] = value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue): the real one follows
            self._interim = True
            self.headers = {}
            return
        headers = self.headers
        self._until_close = (
            b"content-length" not in headers
            and b"chunked" not in headers.get(b"transfer-encoding", b"").lower()
        )
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding in (b"gzip", b"x-gzip", b"deflate"):
            # wbits 47: zlib or gzip by the header; raw deflate if a server sends that
            self._decoder = zlib.decompressobj(47 if encoding != b"deflate" else 15)
        self.status = status
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._size += len(body)
        if self._size > HIGH_WATER and not (self._paused or self._whole):
            self._paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._done = True
        self._reusable = self._parser.should_keep_alive()
        self._stop_timer()
        self._wake()


class Pool:
    """This event loop's connections, idle ones kept per origin."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._idle: dict[Origin, list[Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_s: float, read_s: float
    ) -> Connection:
        """Send a POST; return its connection once the answer's head has arrived.
        The caller reads the body from it, then `release`s it."""
        try:
            origin, head = target(url)
        except (ValueError, UnicodeError) as exc:
            raise Broken(str(exc)) from None
        data = request_bytes(head, headers, body)
        connection = self._idle_connection(origin) or await self._connect(origin, connect_s)
        try:
            connection.send(data, read_s)
            await connection.head()
        except BaseException:
            connection.abort()  # cancelled or failed: nothing half-read goes back
            raise
        return connection

    def put_back(self, connection: Connection) -> None:
        idle = self._idle.setdefault(connection.origin, [])
        if len(idle) >= KEEP_IDLE:
            connection.abort()
        else:
            idle.append(connection)

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()

    def tls(self) -> ssl.SSLContext:
        """The client TLS context (the system's CAs), made once: loading them takes ms."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _idle_connection(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = self._loop.time()
        while idle:
            connection = idle.pop()  # the most recent: the least likely to be closed
            quiet = now - connection.idle_since
            stale = quiet > IDLE_S or (quiet > CHECK_IDLE_S and connection.hung_up())
            if connection.closed or stale:
                connection.abort()
            else:
                return connection
        return None

    async def _connect(self, origin: Origin, connect_s: float) -> Connection:
        connection = Connection(self._loop, origin)
        try:
            async with asyncio.timeout(connect_s):
                await self._loop.create_connection(
                    lambda: connection,
                    origin.host,
                    origin.port,
                    ssl=self.tls() if origin.tls else None,
                )
        except TimeoutError:
            connection.abort()
            raise Timeout("no connection in time") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError)
            connection.abort()
            raise Broken(type(exc).__name__) from None
        return connection


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = weakref.WeakKeyDictionary()


def pool() -> Pool:
    """This event loop's pool: its connections outlive a request."""
    loop = asyncio.get_running_loop()
    current = _pools.get(loop)
    if current is None:
        current = _pools[loop] = Pool(loop)
    return current


def close_pool() -> None:
    """Close this event loop's idle connections (when a server shuts down)."""
    current = _pools.pop(asyncio.get_running_loop(), None)
    if current is not None:
        current.close()
