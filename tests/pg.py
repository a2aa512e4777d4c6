"""Fresh PostgreSQL databases for tests, on TEST_DATABASE_URL's server or the embedded one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]


def server_url() -> str:
    """A URL on a server where tests may create databases."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from gatewayz.dev import embedded

    home = ROOT / ".gatewayz" / "test"
    home.mkdir(parents=True, exist_ok=True)
    return embedded.start(home, "postgres")


def create_database(server: str, prefix: str = "gwtest") -> str:
    """Create an empty database on `server`; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(server, dbname=name)


def drop_database(server: str, url: str) -> None:
    """Drop the database of `url`, disconnecting whoever still uses it."""
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
