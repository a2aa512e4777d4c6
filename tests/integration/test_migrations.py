"""infra/migrations through `gatewayz.migrate`: from zero, twice, concurrently, and the
row level security every table must have."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from gatewayz import db, migrate
from tests.pg import ROOT

if TYPE_CHECKING:
    from pathlib import Path

MIGRATIONS = ROOT / "infra" / "migrations"
TABLES = {
    "plans", "accounts", "users", "memberships", "subscriptions", "api_keys", "api_key_secrets",
    "credit_transactions", "credit_holds", "usage_records", "models", "model_offers",
    "provider_credentials", "chat_sessions", "chat_messages", "referrals", "coupons",
    "coupon_redemptions", "payments", "stripe_events", "audit_log", "email_outbox",
    "schema_migrations", "trial_claims", "team_invitations", "credit_packs",
    "idempotency_records", "model_price_changes",
}  # fmt: skip


def listed() -> list[tuple[str, str]]:
    """(version, name) of each file in infra/migrations, read from the directory itself."""
    return sorted((path.stem[:4], path.stem[5:]) for path in MIGRATIONS.glob("*.sql"))


def tables(url: str) -> set[str]:
    with db.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in rows}


def test_applies_every_migration_from_zero(empty_database: str) -> None:
    with db.connect(empty_database) as conn:
        applied = migrate.apply(conn, MIGRATIONS)
        recorded = conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
    files = listed()
    assert files[:3] == [("0001", "accounts"), ("0002", "api_keys"), ("0003", "credits")]
    assert applied == [version for version, _ in files]
    assert recorded == files
    assert tables(empty_database) == TABLES


def test_second_run_applies_nothing_and_changes_nothing(empty_database: str) -> None:
    with db.connect(empty_database) as conn:
        migrate.apply(conn, MIGRATIONS)
        before = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        assert migrate.apply(conn, MIGRATIONS) == []
        assert (
            conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall() == before
        )


def test_two_processes_migrating_at_once_apply_each_file_once(empty_database: str) -> None:
    cmd = [sys.executable, "-m", "gatewayz.dev.cli", "migrate"]
    env = {"DATABASE_URL": empty_database, "PATH": "/usr/bin:/bin", "GATEWAYZ_ROOT": str(ROOT)}
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted(out for out, _ in outputs)
    # One process applied everything; the other waited on the lock and found nothing to do.
    assert "none pending" in said[0] or "none pending" in said[1]
    with db.connect(empty_database) as conn:
        counts = conn.execute("SELECT count(*), count(DISTINCT version) FROM schema_migrations")
        total, distinct = counts.fetchone() or (0, 0)
    assert total == distinct == len(listed())
    assert tables(empty_database) == TABLES


def test_a_failing_migration_leaves_nothing_behind(empty_database: str, tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS, tmp_path, dirs_exist_ok=True)
    (tmp_path / "9999_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT 1/0;\n")
    with db.connect(empty_database) as conn, pytest.raises(psycopg.errors.DivisionByZero):
        migrate.apply(conn, tmp_path)
    assert tables(empty_database) == set()


def test_an_applied_migration_that_changed_is_refused(empty_database: str, tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS, tmp_path, dirs_exist_ok=True)
    with db.connect(empty_database) as conn:
        migrate.apply(conn, tmp_path)
        first = sorted(tmp_path.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
            migrate.apply(conn, tmp_path)


def test_misnamed_or_duplicate_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(migrate.MigrationError, match="used twice"):
        migrate.discover(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2-bad.sql").write_text("SELECT 1;")
    with pytest.raises(migrate.MigrationError, match="NNNN_name"):
        migrate.discover(tmp_path)


def test_every_table_has_row_level_security(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = 'r' AND NOT relrowsecurity"
    ).fetchall()
    assert rows == []


def test_money_functions_are_not_executable_by_public(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT has_function_privilege('public', %s, 'EXECUTE')",
        ("ledger_post(uuid,text,bigint,text,text,text,jsonb,uuid,boolean)",),
    ).fetchone()
    assert row == (False,)


API_ROLES = ("anon", "authenticated")  # the roles Supabase's REST API runs as
EXPOSED = """
SELECT r.role, 'function ' || p.oid::regprocedure::text
  FROM pg_proc p, unnest(%(roles)s::text[]) AS r(role)
 WHERE p.pronamespace = 'public'::regnamespace AND has_function_privilege(r.role, p.oid, 'EXECUTE')
UNION ALL
SELECT r.role, 'table ' || c.relname
  FROM pg_class c, unnest(%(roles)s::text[]) AS r(role)
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND has_table_privilege(
           r.role, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
UNION ALL
SELECT r.role, 'sequence ' || c.relname
  FROM pg_class c, unnest(%(roles)s::text[]) AS r(role)
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
   AND has_sequence_privilege(r.role, c.oid, 'USAGE, SELECT, UPDATE')
"""


def ensure_api_roles(server: str) -> None:
    """Create Supabase's API roles on this cluster unless they exist (roles are shared by
    every database, and other test runs may be creating them at the same moment)."""
    with psycopg.connect(server, autocommit=True) as conn:
        for role in API_ROLES:
            with contextlib.suppress(
                psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation
            ):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))


def exposed(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(EXPOSED, {"roles": list(API_ROLES)}).fetchall()


def test_supabase_api_roles_can_use_nothing_now_or_later(
    pg_server: str, empty_database: str
) -> None:
    ensure_api_roles(pg_server)
    with db.connect(empty_database) as conn:
        # What a Supabase project does for everything its `postgres` role creates.
        for kind in ("TABLES", "FUNCTIONS", "SEQUENCES"):
            conn.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON {kind} "
                "TO anon, authenticated"
            )
        migrate.apply(conn, MIGRATIONS)
        assert exposed(conn) == []
        # What a later migration creates, as the same role, is closed to them too.
        conn.execute("CREATE FUNCTION later_function() RETURNS integer LANGUAGE sql AS 'SELECT 1'")
        conn.execute("CREATE TABLE later_table (id bigserial PRIMARY KEY)")
        assert exposed(conn) == []
        ours = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchone()
        assert ours is not None
        assert ours[0] > 5  # the check looked at real functions
