"""The account's auth_version (infra/migrations/0012): every change to what the key lookup
reads raises it in the same transaction, and nothing the request path writes does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gatewayz import config, db
from gatewayz.identity import keys
from tests.factories import new_key, new_owner

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

    from gatewayz.identity.accounts import Owner

# api_keys columns the lookup does not read (or the request path writes): no bump.
NOT_READ_BY_AUTH = {
    "id", "name", "environment", "prefix", "last4", "spent_nanos", "rotation_period",
    "rotated_at", "last_used_at", "created_at", "updated_at", "limit_reset", "spent_since",
}  # fmt: skip


@pytest.fixture
def owner(database_url: str) -> Owner:
    return new_owner()


def version(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute("SELECT auth_version FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def bumps(conn: psycopg.Connection, account_id: str, change: Callable[[], object]) -> int:
    before = version(conn, account_id)
    change()
    return version(conn, account_id) - before


def run(conn: psycopg.Connection, statement: str, *params: object) -> Callable[[], object]:
    return lambda: conn.execute(statement.encode(), params)


def test_every_change_to_a_key_bumps_its_accounts_version(
    conn: psycopg.Connection, owner: Owner
) -> None:
    account = owner.account_id
    assert bumps(conn, account, lambda: new_key(owner)) >= 1
    key = new_key(owner)

    def update(assignment: str) -> Callable[[], object]:
        return run(conn, f"UPDATE api_keys SET {assignment} WHERE id = %s", key.id)

    for assignment in (
        "scopes = ARRAY['chat']",
        "allowed_models = ARRAY['openai/*']",
        "allowed_cidrs = ARRAY['10.0.0.0/8']::cidr[]",
        "allowed_referers = ARRAY['app.example.com']",
        "requests_per_minute = 3",
        "tokens_per_minute = 30",
        "concurrent_requests = 1",
        "limits_set_by_admin = true",
        "spend_limit_nanos = 5",
        "expires_at = now() + interval '1 day'",
        "disabled = true",
        "revoked_at = now()",
    ):
        assert bumps(conn, account, update(assignment)) == 1, assignment
    # What settling a request writes, and a no-op, bump nothing.
    assert bumps(conn, account, update("spent_nanos = spent_nanos + 7, last_used_at = now()")) == 0
    assert bumps(conn, account, update("name = 'renamed', updated_at = now()")) == 0
    assert bumps(conn, account, update("scopes = scopes")) == 0
    assert bumps(conn, account, run(conn, "DELETE FROM api_keys WHERE id = %s", key.id)) >= 1


def test_every_change_to_a_secret_bumps_its_accounts_version(
    conn: psycopg.Connection, owner: Owner
) -> None:
    key = new_key(owner)
    new_hash = keys.hash_secret(keys.generate(), config.key_hash_secret())

    def rotate() -> None:
        with conn.transaction():
            run(conn, "UPDATE api_key_secrets SET expires_at = now() WHERE key_id = %s", key.id)()
            run(
                conn, "INSERT INTO api_key_secrets (hash, key_id) VALUES (%s, %s)", new_hash, key.id
            )()

    assert bumps(conn, owner.account_id, rotate) == 2
    drop = run(conn, "DELETE FROM api_key_secrets WHERE hash = %s", new_hash)
    assert bumps(conn, owner.account_id, drop) == 1


def test_membership_and_account_changes_bump_the_version(
    conn: psycopg.Connection, owner: Owner
) -> None:
    account, other = owner.account_id, new_owner()
    others_version = version(conn, other.account_id)
    member = "account_id = %s AND user_id = %s"
    changes = [
        ("INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'member')", other),
        (f"UPDATE memberships SET role = 'admin' WHERE {member}", other),
        (f"DELETE FROM memberships WHERE {member}", owner),
    ]
    for statement, whose in changes:
        assert bumps(conn, account, run(conn, statement, account, whose.user_id)) == 1, statement
    assert version(conn, other.account_id) == others_version  # only the account changed
    for assignment, bumped in (
        ("status = 'suspended'", 1),
        ("plan_id = 'dev'", 1),
        # The request path's writes to the account, and a no-op, bump nothing.
        ("balance_nanos = balance_nanos, updated_at = now()", 0),
        ("status = status, plan_id = plan_id", 0),
    ):
        change = run(conn, f"UPDATE accounts SET {assignment} WHERE id = %s", account)
        assert bumps(conn, account, change) == bumped, assignment


def test_every_api_keys_column_is_either_watched_or_known_to_be_irrelevant(
    conn: psycopg.Connection,
) -> None:
    # A column added later must be put on one side: the trigger's list, or this set.
    columns = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'api_keys'"
        )
    }
    watched = {
        row[0]
        for row in conn.execute(
            """SELECT a.attname FROM pg_trigger t
                 JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY(t.tgattr)
                WHERE t.tgname = 'api_keys_changed'"""
        )
    }
    assert watched
    assert watched.isdisjoint(NOT_READ_BY_AUTH)
    assert watched | NOT_READ_BY_AUTH == columns


def test_revoking_a_key_returns_the_version_to_announce(
    conn: psycopg.Connection, owner: Owner
) -> None:
    key = new_key(owner)
    before = version(conn, owner.account_id)
    with db.transaction() as cur:
        announced = keys.revoke(cur, key.id, owner.account_id)
    assert announced == version(conn, owner.account_id) == before + 1
    with db.transaction() as cur:
        assert keys.revoke(cur, key.id, owner.account_id) is None  # already revoked
        assert keys.revoke(cur, key.id, new_owner().account_id) is None  # not theirs
    revoked = conn.execute("SELECT revoked_at FROM api_keys WHERE id = %s", (key.id,)).fetchone()
    assert revoked is not None
    assert revoked[0] is not None
