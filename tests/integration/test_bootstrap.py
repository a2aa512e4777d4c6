"""The local admin and demo accounts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gatewayz import config
from gatewayz.dev import bootstrap
from gatewayz.identity import keys

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg


def account_of(conn: psycopg.Connection, secret: str) -> tuple[str, int, list[str]]:
    row = conn.execute(
        """SELECT a.plan_id, a.balance_nanos, k.scopes FROM api_key_secrets s
             JOIN api_keys k ON k.id = s.key_id JOIN accounts a ON a.id = k.account_id
            WHERE s.hash = %s""",
        (keys.hash_secret(secret, config.key_hash_secret()),),
    ).fetchone()
    assert row is not None, "the key does not authenticate"
    return row[0], row[1], row[2]


def test_dev_keys_are_created_saved_and_reused(conn: psycopg.Connection, tmp_path: Path) -> None:
    created = bootstrap.dev_keys(tmp_path)
    saved = json.loads((tmp_path / "dev-keys.json").read_text())
    assert saved == {"admin_key": created.admin_key, "demo_key": created.demo_key}
    assert (tmp_path / "dev-keys.json").stat().st_mode & 0o077 == 0
    assert bootstrap.dev_keys(tmp_path) == created

    plan, balance, scopes = account_of(conn, created.demo_key)
    assert (plan, balance) == ("trial", 10_000_000_000)
    assert "admin" not in scopes
    assert "admin" in account_of(conn, created.admin_key)[2]
    ledger = conn.execute(
        """SELECT kind, amount_nanos FROM credit_transactions t JOIN api_keys k
             ON k.account_id = t.account_id JOIN api_key_secrets s ON s.key_id = k.id
            WHERE s.hash = %s""",
        (keys.hash_secret(created.demo_key, config.key_hash_secret()),),
    ).fetchall()
    assert ledger == [("trial", 10_000_000_000)]
    # Only hashes are stored.
    stored = conn.execute("SELECT count(*) FROM api_keys WHERE prefix = %s", (created.demo_key,))
    assert stored.fetchone() == (0,)


def test_a_lost_key_file_gives_new_keys_for_the_same_accounts(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    first = bootstrap.dev_keys(tmp_path)
    (tmp_path / "dev-keys.json").unlink()
    second = bootstrap.dev_keys(tmp_path)
    assert second.demo_key != first.demo_key
    users = conn.execute(
        "SELECT count(*) FROM users WHERE email IN (%s, %s)",
        (bootstrap.ADMIN_EMAIL, bootstrap.DEMO_EMAIL),
    ).fetchone()
    assert users == (2,)
    # The trial is granted once per account, however often the keys are recreated.
    assert account_of(conn, second.demo_key)[1] == 10_000_000_000
