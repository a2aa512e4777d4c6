"""The Redis rate-limit store (`REDIS_URL`; docs/architecture.md, step 3): redis-py, one
script call per hit.

Imported only when `REDIS_URL` is configured, so nothing else loads redis-py.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gatewayz.ratelimit.base import StoreUnavailable
from gatewayz.ratelimit.script import SHA, NoScript, ScriptStore

if TYPE_CHECKING:
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

    def _begin_run(self, keys: list[str], args: list[str | int]) -> Callable[[], object]:
        """Send the EVALSHA now; the returned call reads its reply. No thread: the
        request's own thread holds credits while the script runs.

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

        def reply() -> object:
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
