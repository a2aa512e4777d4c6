"""`gatewayz migrate`: apply infra/migrations/NNNN_name.sql in order (docs/architecture.md, data).

All pending migrations run in one transaction under a transaction-level advisory lock,
so two processes migrating at once apply each file exactly once (the second waits,
then finds nothing to do), a failing file leaves the schema as it was, and it works
through Supabase's transaction pooler. Applied files are recorded with a checksum in
`schema_migrations`; editing one after it was applied is refused.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from gatewayz.record import record

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

# pg_advisory_xact_lock key: any constant no other code uses ("gatewayz" in ASCII).
LOCK_KEY = 0x6761746577617A
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The migrations directory or the recorded history is inconsistent."""


@record
class Migration:
    """One SQL file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    """The migrations in `directory`, ordered by version.

    Raises:
        MigrationError: a file is misnamed or two share a version.
    """
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version, name = match.groups()
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, name, path.read_text())
    return [found[v] for v in sorted(found)]


def apply(conn: psycopg.Connection[Any], directory: Path) -> list[str]:
    """Apply every pending migration; return the versions applied (empty if none).

    Raises:
        MigrationError: an applied file was changed since.
        psycopg.Error: a migration failed (nothing of this run is kept).
    """
    migrations = discover(directory)
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    text PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.version}_{migration.name}.sql changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration.version)
    return applied_now
