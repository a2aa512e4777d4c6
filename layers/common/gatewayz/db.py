"""PostgreSQL access (docs/architecture.md, data): one lazy psycopg connection per thread.

In Lambda that is one connection per warm function. The connection runs in autocommit,
so a single statement costs one round trip; multi-statement changes use `transaction()`.
`prepare_threshold=None` because Supabase's transaction pooler cannot keep prepared
statements.

Calls here are synchronous: a Lambda instance serves one request at a time, and a
sub-millisecond query costs less inline than a hop to a thread pool. The two statements
every billed request waits on (its hold and its settlement) are written once as a `Query`
and run either here (`run`: scripts, jobs, cleanup paths) or from the event loop
(gatewayz/adb.py), so one server process overlaps many requests' waits.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from gatewayz import config
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import psycopg

CONNECT_TIMEOUT_S = 5
# Every connection's settings, blocking or awaited (gatewayz/adb.py).
OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": None,
    "connect_timeout": CONNECT_TIMEOUT_S,
    "application_name": "gatewayz",
}
_local = threading.local()
_url_lock = threading.Lock()
_url: str | None = None
_on_reset: list[Callable[[], None]] = []


def database_url() -> str:
    """`DATABASE_URL`, or outside Lambda the embedded PostgreSQL in the state directory.

    Raises:
        MissingConfiguration: unset inside Lambda.
    """
    global _url
    url = config.get_settings().database_url
    if url:
        return url
    if config.in_lambda():
        from gatewayz.errors import MissingConfiguration

        raise MissingConfiguration("DATABASE_URL")
    with _url_lock:
        if _url is None:
            from gatewayz.dev import embedded

            _url = embedded.start(config.home())
        return _url


def connect(url: str | None = None) -> psycopg.Connection[Any]:
    """Open a new connection configured as the gateway uses it."""
    import psycopg

    return psycopg.connect(url or database_url(), **OPTIONS)


def connection() -> psycopg.Connection[Any]:
    """This thread's connection, opened on first use and reopened if it broke."""
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed or conn.broken:
        conn = connect()
        _local.conn = conn
    return conn


@contextmanager
def transaction() -> Iterator[psycopg.Cursor[Any]]:
    """A cursor inside one transaction: committed on success, rolled back on error."""
    conn = connection()
    with conn.transaction(), conn.cursor() as cur:
        yield cur


def execute(query: str, params: Any = None) -> psycopg.Cursor[Any]:
    """Run one statement in its own implicit transaction (one round trip)."""
    return connection().execute(query, params)


@record
class Query[T]:
    """Statements sent in one round trip (pipelined when more than one), and what the
    last one's first row means. Built once, run by `run` or `gatewayz.adb.run`."""

    statements: tuple[tuple[str, Any], ...]
    read: Callable[[tuple[Any, ...] | None], T]


def run[T](query: Query[T]) -> T:
    """Run `query` on this thread's connection, blocking until it answers."""
    conn = connection()
    if len(query.statements) == 1:
        cur = conn.execute(*query.statements[0])
    else:
        with conn.pipeline():
            for statement in query.statements:
                cur = conn.execute(*statement)
    return query.read(cur.fetchone())


def ping() -> None:
    """Raise unless the database answers a trivial query."""
    execute("SELECT 1").fetchone()


def close() -> None:
    """Close this thread's connection (tests, CLI)."""
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is not None:
        conn.close()
        _local.conn = None


def on_reset(forget: Callable[[], None]) -> None:
    """Have `reset` call `forget` too (gatewayz/adb.py: its idle connections)."""
    _on_reset.append(forget)


def reset() -> None:
    """Forget the cached URL and this thread's connection, and the event loops' idle ones
    (after the settings changed)."""
    global _url
    close()
    for forget in _on_reset:
        forget()
    with _url_lock:
        _url = None
