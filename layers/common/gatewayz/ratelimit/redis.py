"""The Redis rate-limit store (`REDIS_URL`; docs/architecture.md, step 3): redis-py, one
script call per hit.

Imported only when `REDIS_URL` is configured, so nothing else loads redis-py.
"""

from __future__ import annotations

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


class RedisStore(ScriptStore):
    """Counters on a Redis server (or Redis Cluster node, see `script.py` on hash tags)."""

    name: ClassVar[str] = "redis"

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

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
        """Send the EVALSHA now on a connection of the pool; the returned call reads its
        reply. No thread: the request's own thread holds credits while the script runs.

        Anything short of a reply takes the ordinary way (`_run`: EVAL on NOSCRIPT, and
        redis-py's retry on a broken connection): a send that failed sent nothing, and a
        connection that broke before its reply is retried, as redis-py retries a command
        whose connection broke. A timeout is never retried (`StoreUnavailable`).
        """
        pool = self._client.connection_pool
        try:
            connection = pool.get_connection()
        except redis.RedisError:
            return lambda: self._run(keys, args)
        try:
            # hiredis (installed with redis[hiredis]) packs in C what redis-py's packer
            # would first walk argument by argument.
            command = hiredis.pack_command(("EVALSHA", SHA, len(keys), *keys, *args))  # type: ignore[arg-type]
            connection.send_packed_command([command])  # type: ignore[no-untyped-call]
        except redis.RedisError:
            pool.release(connection)  # disconnected by the failed send
            return lambda: self._run(keys, args)

        def reply() -> object:
            try:
                return connection.read_response()
            except redis.ConnectionError:
                pass  # disconnected; retried below, once, as redis-py would
            except redis.exceptions.NoScriptError:
                pass  # the script is sent in full below (EVAL)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
            finally:
                pool.release(connection)
            return self._run(keys, args)

        return reply
