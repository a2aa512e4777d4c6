"""The Redis rate-limit store (`REDIS_URL`; docs/architecture.md, step 3): redis-py, one
script call per hit.

Imported only when `REDIS_URL` is configured, so nothing else loads redis-py.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, ClassVar

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gatewayz.ratelimit.base import StoreUnavailable
from gatewayz.ratelimit.script import SHA, NoScript, ScriptStore

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import Self

    from redis.connection import ConnectionInterface


class RedisStore(ScriptStore):
    """Counters on a Redis server (or Redis Cluster node, see `script.py` on hash tags)."""

    name: ClassVar[str] = "redis"

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._mine = threading.local()  # this thread's connection for started hits

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> Self:
        """A store for `url` (`redis://`, `rediss://`, `unix://`); connects on first use."""
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One immediate retry, and only when the connection broke (e.g. a socket gone
            # stale while the Lambda sandbox was frozen). Never after a timeout: the script
            # may have run, and counting twice is worse than answering "unavailable".
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            # A connection idle this long is PINGed before reuse; a warm, busy function
            # never pays this extra round trip.
            health_check_interval=30,
        )
        return cls(client)

    def ping(self) -> None:
        """Raise `StoreUnavailable` unless Redis answers PING."""
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    def _call(self, command: str, script: str, keys: list[str], args: list[str | int]) -> object:
        try:
            send = self._client.evalsha if command == "EVALSHA" else self._client.eval
            reply: object = send(script, len(keys), *keys, *args)
            return reply
        except redis.exceptions.NoScriptError:
            raise NoScript from None
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    def _begin_run(
        self,
        keys: list[str],
        args: list[str | int],
        on_answer: Callable[[], None] | None = None,
    ) -> Callable[[], object]:
        """Send the EVALSHA now; the returned call reads its reply. No thread: the
        request's own thread holds credits while the script runs. With `on_answer`, the
        running event loop calls it when the reply arrives (`_Watch`), while the request
        waits for its credit hold.

        The connection is this thread's own, taken from the pool and never put back:
        the pool's bookkeeping (a lock, a readiness poll, its counters) on every request
        bought nothing on a connection that only this thread uses. While its reply is
        unread, another hit started on the thread takes a connection from the pool.

        Anything short of a reply takes the ordinary way (`_run`: EVAL on NOSCRIPT, and
        redis-py's retry on a broken connection): a send that failed sent nothing, and a
        connection that broke before its reply is retried, as redis-py retries a command
        whose connection broke. A timeout is never retried (`StoreUnavailable`).
        """
        pool, mine = self._client.connection_pool, self._mine
        pooled = getattr(mine, "busy", False)
        connection: ConnectionInterface
        try:
            if pooled:
                connection = pool.get_connection()
            else:
                # Taken from the pool once and kept: the first is the one the warm-up's
                # PING opened (gatewayz/chat/warmup.py), so the first request finds it ready.
                connection = getattr(mine, "connection", None) or pool.get_connection()
                mine.connection = connection
        except redis.RedisError:
            return lambda: self._run(keys, args)

        def done() -> None:
            if pooled:
                pool.release(connection)
            else:
                mine.busy = False

        try:
            # hiredis (installed with redis[hiredis]) packs in C what redis-py's packer
            # would first walk argument by argument.
            command = hiredis.pack_command(("EVALSHA", SHA, len(keys), *keys, *args))  # type: ignore[arg-type]
            connection.send_packed_command([command])
        except redis.RedisError:  # disconnected by the failed send
            done()
            return lambda: self._run(keys, args)
        if not pooled:
            mine.busy = True
        # The thread's own connection only: pooled ones would take turns at the watch.
        watch = _watch(connection, on_answer) if on_answer and not pooled else None

        def reply() -> object:
            if watch is not None:
                watch.pending = None  # read now: nothing left to tell
            try:
                return connection.read_response()
            except redis.ConnectionError:
                pass  # disconnected; retried below, as redis-py would
            except redis.exceptions.NoScriptError:
                pass  # the script is sent in full below (EVAL)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
            finally:
                done()
            return self._run(keys, args)

        return reply


class _Watch:
    """The event loop watching a thread's own Redis connection for the reply it waits
    for, registered for as long as the connection lasts: added and removed for each
    reply, a watch costs uvloop a poll handle and seven system calls. It watches a
    duplicate of the socket's descriptor, which only this closes: redis-py closes and
    reopens its sockets on its own, and a loop must never watch a number that may have
    become another connection's.
    """

    __slots__ = ("fd", "loop", "pending", "sock")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        """Raises OSError: no descriptor to spare, or the loop would not watch it."""
        self.loop, self.sock = loop, sock
        self.fd = os.dup(sock.fileno())
        self.pending: Callable[[], None] | None = None  # what to call when the reply comes
        try:
            loop.add_reader(self.fd, self._readable)
        except BaseException:
            os.close(self.fd)
            raise

    def _readable(self) -> None:
        answer, self.pending = self.pending, None
        if answer is None:
            # Nothing asked: the server closed the connection, or redis-py shut it after
            # a failed read. redis-py finds out at the next command; a new socket gets a
            # new watch.
            self.stop()
        else:
            answer()

    def stop(self) -> None:
        if self.fd < 0:
            return
        if not self.loop.is_closed():
            self.loop.remove_reader(self.fd)
        os.close(self.fd)
        self.fd = -1
        if _watches.get(self.loop) is self:
            del _watches[self.loop]


# One watch per event loop (each loop runs on a thread of its own, with its connection).
_watches: dict[asyncio.AbstractEventLoop, _Watch] = {}


def _watch(connection: ConnectionInterface, on_answer: Callable[[], None]) -> _Watch | None:
    """Have the running event loop call `on_answer` when the reply just sent for arrives;
    clear the returned watch's `pending` before reading it. None: no running loop (the
    reply is read when asked)."""
    sock = getattr(connection, "_sock", None)  # redis-py's socket, open after a send
    # A socket without a timeout is blocking; the loop's poll would make it non-blocking
    # under redis-py's feet (the stores made here always have one).
    if sock is None or sock.gettimeout() is None:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    watch = _watches.get(loop)
    if watch is None or watch.sock is not sock:
        if watch is not None:
            watch.stop()  # redis-py has opened a new socket since
        for ended in [other for other in list(_watches) if other.is_closed()]:
            closed = _watches.pop(ended, None)  # (another thread may have taken it)
            if closed is not None:
                closed.stop()
        try:
            watch = _watches[loop] = _Watch(loop, sock)
        except OSError:  # e.g. out of descriptors: the reply is read when asked, as ever
            return None
    watch.pending = on_answer
    return watch
