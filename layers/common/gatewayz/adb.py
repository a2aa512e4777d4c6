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

A single statement is sent and read through psycopg's lower layers (`_execute`):
libpq's `send_query_params`, a `Transformer` kept with the connection for the
parameters and the row (the adapters a cursor uses, in C), and the event loop's reader
callback for the wait. The cursor around them, its generators and its waiting
function, cost ~110 µs of CPU a statement more (bench/README.md), with two statements
a completion. Statements written `%s`-positional (as for psycopg, in ASCII) take this
way; any other (named parameters, `%%`) and pipelined ones take a cursor.

A connection's socket stays registered with its event loop's reader for as long as the
connection is open, not added and removed for each wait: on uvloop that is a poll
handle made and closed and eight system calls a wait. While the connection is idle,
whatever arrives (a notice, the server's goodbye) is read at once, so the loop is not
woken for it again; a connection whose server went away is closed then and there.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from gatewayz import db

if TYPE_CHECKING:
    import psycopg
    from psycopg import pq

    from gatewayz.db import Query

# At most this many connections per event loop; a statement beyond waits for one. A
# statement takes well under a millisecond, so a few serve many requests in flight,
# and a process never takes more than its share of the database's connection slots.
MAX_CONNECTIONS = 8


class _Link:
    """An open connection, the `Transformer` its statements are dumped and loaded with
    (the adapters a cursor would make anew for each statement), and its socket's
    registration with the event loop: `waiter` is woken when the socket is readable."""

    __slots__ = ("conn", "fd", "loop", "open", "tx", "waiter")

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        from psycopg.adapt import Transformer

        self.conn = conn
        self.tx = Transformer.from_context(conn)
        self.fd = conn.pgconn.socket
        self.loop = asyncio.get_running_loop()
        self.waiter: asyncio.Future[None] | None = None
        self.open = True
        self.attach()

    def attach(self) -> None:
        self.loop.add_reader(self.fd, self._readable)

    def detach(self) -> None:
        """Give the socket's reader up (psycopg's own waiting takes it while a cursor runs)."""
        if not self.loop.is_closed():
            self.loop.remove_reader(self.fd)

    def close(self) -> None:
        """Close without awaiting: the socket is closed at once. From another thread than
        its loop's, the loop does it (its reader must be removed there, before the fd goes)."""
        if not self.open:
            return
        if self.loop.is_running() and not _on(self.loop):
            self.loop.call_soon_threadsafe(self.close)
            return
        self.open = False
        self.detach()
        self.conn.pgconn.finish()

    def _readable(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            _wake(waiter)
            return
        # Nobody waits (idle): read what came, or the loop calls again at once.
        try:
            self.conn.pgconn.consume_input()
        except Exception:  # noqa: BLE001 - the server went away: this one is done
            self.close()


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this thread is running `loop`."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _Connections:
    """One event loop's connections: the idle ones, and a slot for each one in use."""

    def __init__(self) -> None:
        self.idle: list[_Link] = []
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)


# By event loop: a connection waits on the loop it is used from, and tests and
# `gatewayz dev` may run several loops in one process, one after the other.
_loops: dict[asyncio.AbstractEventLoop, _Connections] = {}


async def run[T](query: Query[T]) -> T:
    """Run `query` on an idle connection of this event loop (or a new one), awaiting it."""
    pool = _pool()
    async with pool.slots:
        link = _idle(pool) or _Link(await _connect())
        try:
            single = query.statements[0] if len(query.statements) == 1 else None
            numbered = _numbered(single[0]) if single else None
            if single and numbered:
                row = await _execute(link, numbered, single[1])
            else:
                link.detach()
                cur = link.conn.cursor()
                if single:
                    await cur.execute(*single)
                else:
                    async with link.conn.pipeline():
                        for statement in query.statements:
                            await cur.execute(*statement)
                row = await cur.fetchone()
                link.attach()
        except BaseException:
            # Failed or cancelled midway, its state is unknown: it is not reused. A
            # statement still running is cancelled on the server first (as psycopg's
            # cursor does): closing the socket alone leaves it running there.
            await _cancel(link.conn)
            link.close()
            raise
        if link.open and not link.conn.broken:
            pool.idle.append(link)
    return query.read(row)


def start[T](query: Query[T]) -> asyncio.Task[T]:
    """`run`, with the statement sent before this returns (an eager task runs up to its
    first wait): the caller works while the server runs it, then awaits the task."""
    return asyncio.eager_task_factory(asyncio.get_running_loop(), run(query))


def _idle(pool: _Connections) -> _Link | None:
    """The most recently used idle connection still open (one whose server went away
    while it was idle has closed itself)."""
    while pool.idle:
        link = pool.idle.pop()
        if link.open:
            return link
    return None


async def warm() -> None:
    """Open one connection for this event loop now (the function's INIT phase)."""
    pool = _pool()
    if not pool.idle:
        pool.idle.append(_Link(await _connect()))


def connections() -> list[psycopg.AsyncConnection[Any]]:
    """Every event loop's idle connections (for tracing what a request sends)."""
    return [link.conn for pool in _loops.values() for link in pool.idle if link.open]


def forget() -> None:
    """Close every idle connection (the settings changed; tests)."""
    for pool in _loops.values():
        for link in pool.idle:
            link.close()
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
            for link in _loops.pop(ended, _Connections()).idle:
                link.close()
        pool = _loops[loop] = _Connections()
    return pool


async def _execute(
    link: _Link, numbered: tuple[bytes, int], params: tuple[Any, ...]
) -> tuple[Any, ...] | None:
    """The first row of a statement (`_numbered`'s form) run with `params`, as a cursor's
    `execute` and `fetchone` would give it (the same adapters, the same errors)."""
    sql, count = numbered
    if len(params) != count:
        from psycopg import errors

        raise errors.ProgrammingError(f"the statement takes {count} parameters, not {len(params)}")
    pgconn, tx = link.conn.pgconn, link.tx
    values = tx.dump_sequence(params, _formats(count))
    pgconn.send_query_params(sql, values, param_types=tx.types, param_formats=tx.formats)
    loop = link.loop
    while pgconn.flush():  # a large statement: the socket takes it in parts
        await _writable(loop, link.fd)
    result = None
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            last = pgconn.get_result()
            if last is None:
                return _row(result, link)
            result = last
        link.waiter = readable = loop.create_future()
        try:
            await readable
        finally:
            link.waiter = None


def _row(result: pq.abc.PGresult | None, link: _Link) -> tuple[Any, ...] | None:
    import psycopg.pq  # (not `from psycopg import pq`: that runs importlib's Python each time)

    if result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK:
        if result.ntuples == 0:
            return None
        link.tx.set_pgresult(result)
        return link.tx.load_row(0, tuple)
    from psycopg import errors

    if result is None:  # libpq gave no result at all: not a statement's answer
        raise errors.InternalError("the statement got no answer")
    if result.status == psycopg.pq.ExecStatus.FATAL_ERROR:
        raise errors.error_from_result(result, encoding=link.conn.info.encoding)
    return None  # a statement that returns no rows


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Until `fd` takes more to send."""
    ready = loop.create_future()
    loop.add_writer(fd, _wake, ready)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


def _wake(ready: asyncio.Future[None]) -> None:
    # The callback may already be queued when a cancellation cancels the future.
    if not ready.done():
        ready.set_result(None)


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[bytes, int] | None:
    """`sql` with `%s` written `$1`, `$2`, ..., and how many there are; None when it has
    any other `%` (named parameters, `%%`): those statements take the cursor."""
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        return None
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
    return numbered.encode(), len(parts) - 1


@functools.cache
def _formats(count: int) -> list[Any]:
    from psycopg.adapt import PyFormat

    return [PyFormat.AUTO] * count


async def _cancel(conn: psycopg.AsyncConnection[Any]) -> None:
    from psycopg import pq

    if conn.pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
        return
    try:
        await conn.cancel_safe(timeout=5.0)
    except Exception as exc:  # noqa: BLE001 - the connection is closed next anyway
        from gatewayz.logs import get_logger

        get_logger().warning("statement cancellation failed", extra={"error": repr(exc)})


db.on_reset(forget)
