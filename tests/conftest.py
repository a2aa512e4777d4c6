"""Shared fixtures: a fresh, migrated and seeded database per test run, and a clean
environment (no developer settings leak in; local state goes to a temporary directory)."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

import pytest

from tests import ledger, pg

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

pytest_plugins = ["tests.redis_fixtures", "tests.encryption", "tests.fakes.stripe"]


def pytest_configure(config: pytest.Config) -> None:
    # Every setting the gateway reads: a developer's shell must not change what tests see.
    from gatewayz.config import Settings

    for name in [*(field.upper() for field in Settings.model_fields), "AWS_LAMBDA_FUNCTION_NAME"]:
        os.environ.pop(name, None)
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["GATEWAYZ_HOME"] = tempfile.mkdtemp(prefix="gatewayz-home-")


def reset_caches() -> None:
    """Forget settings, the database URL and connections after the environment changed."""
    from gatewayz import config, db, ratelimit

    config.get_settings.cache_clear()
    config.key_hash_secret.cache_clear()
    config.session_jwt_secret.cache_clear()
    ratelimit.get_store.cache_clear()
    db.reset()


@pytest.fixture(scope="session")
def pg_server() -> str:
    return pg.server_url()


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> Iterator[str]:
    """This run's own database, migrated and seeded, as DATABASE_URL for the code under test."""
    from gatewayz import db, migrate, seed

    url = pg.create_database(pg_server)
    with db.connect(url) as conn:
        migrate.apply(conn, pg.ROOT / "infra" / "migrations")
        seed.apply(conn, pg.ROOT / "infra" / "seed")
    os.environ["DATABASE_URL"] = url
    reset_caches()
    yield url
    reset_caches()
    os.environ.pop("DATABASE_URL", None)
    # The money invariant must hold after any test, for every account; no output is
    # ever free, and no cost goes uncollected unless a test forced it.
    with db.connect(url) as conn:
        broken = ledger.broken_accounts(conn)
        uncollected = ledger.unexpected_uncollected(conn)
        free = ledger.free_output(conn)
        overrun = ledger.overrun_holds(conn)
    pg.drop_database(pg_server, url)
    assert broken == [], f"balance + holds != sum(ledger) for accounts {broken}"
    assert uncollected == [], f"uncollected cost on requests {uncollected}"
    assert free == [], f"output served free on requests {free}"
    assert overrun == [], f"requests that cost more than their hold: {overrun}"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A separate autocommit connection to this run's database, for arranging and checking."""
    from gatewayz import db

    with db.connect(database_url) as connection:
        yield connection


@pytest.fixture
def empty_database(pg_server: str) -> Iterator[str]:
    """A database with nothing in it (for migration tests)."""
    url = pg.create_database(pg_server, prefix="gwempty")
    yield url
    pg.drop_database(pg_server, url)
