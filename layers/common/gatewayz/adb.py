"""PostgreSQL from the event loop (docs/architecture.md, data): the statements a billed
request waits on, its hold and its settlement, awaited so that one server process
overlaps many requests' waits instead of standing still through each.

The statements are gatewayz.db `Query` objects, written once and run either here or
blocking (`db.run`). Connections are psycopg `AsyncConnection`s with `db.connect`'s
settings (`db.OPTIONS`), one per statement in flight, kept idle per event loop and reused
most-recent first, at most `MAX_CONNECTIONS` per loop: a Lambda instance (one request at
a time) keeps one. psycopg_pool would do the same with a checkout costing ~50 µs of CPU
(measured at 16 concurrent statements), half of what the statement itself costs; a list
and a semaphore do it for a few.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gatewayz import db

if TYPE_CHECKING:
    import psycopg

    from gatewayz.db import Query

# At most this many connections per event loop; a statement beyond waits for one. A
# statement takes well under a millisecond, so a few serve many requests in flight,
# and a process never takes more than its share of the database's connection slots.
MAX_CONNECTIONS = 8


class _Connections:
    """One event loop's connections: the idle ones, and a slot for each one in use."""

    def __init__(self) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)


# By event loop: a connection waits on the loop it is used from, and tests and
# `gatewayz dev` may run several loops in one process, one after the other.
_loops: dict[asyncio.AbstractEventLoop, _Connections] = {}


async def run[T](query: Query[T]) -> T:
    """Run `query` on an idle connection of this event loop (or a new one), awaiting it."""
    pool = _pool()
    async with pool.slots:
        conn = pool.idle.pop() if pool.idle else await _connect()
        try:
            if len(query.statements) == 1:
                cur = await conn.execute(*query.statements[0])
            else:
                async with conn.pipeline():
                    for statement in query.statements:
                        cur = await conn.execute(*statement)
            row = await cur.fetchone()
        except BaseException:
            # Failed or cancelled midway, its state is unknown: it is not reused.
            _finish(conn)
            raise
        if not conn.broken:
            pool.idle.append(conn)
    return query.read(row)


async def warm() -> None:
    """Open one connection for this event loop now (the function's INIT phase)."""
    pool = _pool()
    if not pool.idle:
        pool.idle.append(await _connect())


def connections() -> list[psycopg.AsyncConnection[Any]]:
    """Every event loop's idle connections (for tracing what a request sends)."""
    return [conn for pool in _loops.values() for conn in pool.idle]


def forget() -> None:
    """Close every idle connection (the settings changed; tests)."""
    for pool in _loops.values():
        for conn in pool.idle:
            _finish(conn)
    _loops.clear()


async def _connect() -> psycopg.AsyncConnection[Any]:
    import psycopg

    return await psycopg.AsyncConnection.connect(db.database_url(), **db.OPTIONS)


def _pool() -> _Connections:
    loop = asyncio.get_running_loop()
    pool = _loops.get(loop)
    if pool is None:
        # A new loop: the connections of loops that have ended go (their requests are over).
        # (`list` copies the keys at once: another thread's loop may be adding its own.)
        for ended in [other for other in list(_loops) if other.is_closed()]:
            for conn in _loops.pop(ended, _Connections()).idle:
                _finish(conn)
        pool = _loops[loop] = _Connections()
    return pool


def _finish(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close without awaiting: the socket is closed at once, whatever loop is running."""
    conn.pgconn.finish()


db.on_reset(forget)
