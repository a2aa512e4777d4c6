"""Authenticating API keys against the real database (gatewayz/identity/auth.py;
docs/architecture.md)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
import pytest

from gatewayz import config, db, errors
from gatewayz.identity import auth, keys
from gatewayz.ratelimit import limiter
from gatewayz.ratelimit.redis import RedisStore
from tests.conftest import reset_caches
from tests.factories import new_key, new_owner

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gatewayz.ratelimit import Store

CLOCK = 1_000.0  # the cache's clock, passed as `now=`; expiry is checked on the wall clock


@pytest.fixture(autouse=True)
def _fresh_cache(database_url: str) -> Iterator[None]:
    auth.forget()
    yield
    auth.forget()


def sleep_past(deadline: datetime) -> None:
    """Wait until the wall clock has passed `deadline` (a database timestamp)."""
    while datetime.now(UTC) <= deadline:
        time.sleep(0.05)


def test_a_created_key_authenticates_as_its_account_and_user() -> None:
    owner = new_owner()
    key = new_key(owner)
    caller = auth.authenticate(key.secret)
    assert (caller.key_id, caller.account_id, caller.user_id) == (
        key.id,
        owner.account_id,
        owner.user_id,
    )
    assert caller.scopes == frozenset(keys.DEFAULT_SCOPES)
    assert caller.plan_id == "payg"


def test_a_wrong_secret_is_an_invalid_key() -> None:
    key = new_key(new_owner())
    altered = key.secret[:-1] + ("a" if key.secret[-1] != "a" else "b")
    for secret in (altered, keys.generate()):
        with pytest.raises(errors.InvalidApiKey) as raised:
            auth.authenticate(secret)
        assert (raised.value.status, raised.value.code) == (401, "invalid_api_key")


def test_a_malformed_key_is_refused_without_asking_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    well_formed = keys.generate()
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere")
    reset_caches()
    try:
        # The database is unreachable: a key that needs a lookup fails on the connection...
        with pytest.raises(psycopg.OperationalError):
            auth.authenticate(well_formed)
        # ...while garbage is refused before any lookup.
        for secret in (
            "",
            "sk-not-ours",
            "gw_live_short",
            "gw_prod_" + "a" * 32,
            "gw_live_" + "!" * 32,
        ):
            with pytest.raises(errors.InvalidApiKey) as raised:
                auth.authenticate(secret)
            assert raised.value.code == "invalid_api_key"
    finally:
        monkeypatch.undo()
        reset_caches()
    db.ping()


def test_a_revoked_key_stops_working_within_the_cache_ttl(conn: psycopg.Connection) -> None:
    key = new_key(new_owner())
    auth.authenticate(key.secret, now=CLOCK)
    conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.id,))
    with pytest.raises(errors.RevokedApiKey) as raised:
        auth.authenticate(key.secret, now=CLOCK + auth.AUTH_CACHE_TTL_S)
    assert (raised.value.status, raised.value.code) == (401, "revoked_api_key")


def test_a_key_expires_exactly_at_its_expiry_even_while_cached(conn: psycopg.Connection) -> None:
    key = new_key(new_owner())
    row = conn.execute(
        "UPDATE api_keys SET expires_at = now() + interval '1 second' WHERE id = %s "
        "RETURNING expires_at",
        (key.id,),
    ).fetchone()
    assert row is not None
    assert auth.authenticate(key.secret, now=CLOCK).key_id == key.id
    sleep_past(row[0])
    with pytest.raises(errors.ExpiredApiKey) as raised:
        auth.authenticate(key.secret, now=CLOCK)  # the same instant for the cache
    assert (raised.value.status, raised.value.code) == (401, "expired_api_key")


def test_an_expired_key_is_refused_on_lookup() -> None:
    key = new_key(new_owner(), expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(errors.ExpiredApiKey):
        auth.authenticate(key.secret)


def test_a_rotated_out_secret_works_through_its_grace_period_only(
    conn: psycopg.Connection,
) -> None:
    key = new_key(new_owner())
    new_secret = keys.generate()
    with conn.transaction():
        row = conn.execute(
            "UPDATE api_key_secrets SET expires_at = now() + interval '1 second' "
            "WHERE key_id = %s RETURNING expires_at",
            (key.id,),
        ).fetchone()
        conn.execute(
            "INSERT INTO api_key_secrets (hash, key_id) VALUES (%s, %s)",
            (keys.hash_secret(new_secret, config.key_hash_secret()), key.id),
        )
    assert row is not None
    assert auth.authenticate(key.secret, now=CLOCK).key_id == key.id
    assert auth.authenticate(new_secret, now=CLOCK).key_id == key.id
    sleep_past(row[0])
    with pytest.raises(errors.RevokedApiKey):
        auth.authenticate(key.secret, now=CLOCK)
    with pytest.raises(errors.RevokedApiKey):
        auth.authenticate(key.secret, now=CLOCK + auth.AUTH_CACHE_TTL_S)
    assert auth.authenticate(new_secret, now=CLOCK + auth.AUTH_CACHE_TTL_S).key_id == key.id


def test_a_suspended_account_is_forbidden(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    conn.execute("UPDATE accounts SET status = 'suspended' WHERE id = %s", (owner.account_id,))
    with pytest.raises(errors.AccountInactive) as raised:
        auth.authenticate(key.secret)
    assert (raised.value.status, raised.value.code) == (403, "account_inactive")


def plan_limits(conn: psycopg.Connection, plan_id: str) -> dict[str, int]:
    row = conn.execute(
        """SELECT requests_per_minute, requests_per_day, tokens_per_minute, concurrent_requests
             FROM plans WHERE id = %s""",
        (plan_id,),
    ).fetchone()
    assert row is not None
    names = ("requests_per_minute", "requests_per_day", "tokens_per_minute", "concurrent_requests")
    return dict(zip(names, row, strict=True))


def test_a_keys_lower_limits_win_and_higher_ones_are_capped_by_the_plan(
    conn: psycopg.Connection,
) -> None:
    plan = plan_limits(conn, "payg")
    key = new_key(
        new_owner("payg"),
        requests_per_minute=plan["requests_per_minute"] - 1,
        tokens_per_minute=plan["tokens_per_minute"] * 5,
    )
    limits = auth.authenticate(key.secret).limits
    # The key's own windows (how they combine with the account's: test_limiter.py).
    assert limits.key_requests_per_minute == plan["requests_per_minute"] - 1
    assert limits.tokens_per_minute == plan["tokens_per_minute"]
    assert limits.key_tokens_per_minute == plan["tokens_per_minute"]
    # Unset key limits are the plan's, with no key window of their own.
    assert limits.requests_per_day == plan["requests_per_day"]
    assert limits.concurrent_requests == plan["concurrent_requests"]
    assert (limits.key_requests_per_day, limits.key_concurrent_requests) == (None, None)


def test_an_admin_may_raise_a_keys_limits_above_the_plan(conn: psycopg.Connection) -> None:
    plan = plan_limits(conn, "payg")
    key = new_key(
        new_owner("payg"),
        tokens_per_minute=plan["tokens_per_minute"] * 5,
        concurrent_requests=plan["concurrent_requests"] + 7,
        limits_set_by_admin=True,
    )
    limits = auth.authenticate(key.secret).limits
    assert limits.tokens_per_minute == plan["tokens_per_minute"] * 5
    assert limits.key_tokens_per_minute == plan["tokens_per_minute"] * 5
    assert limits.concurrent_requests == plan["concurrent_requests"] + 7
    assert limits.requests_per_minute == plan["requests_per_minute"]


def test_a_key_stops_working_when_its_users_membership_ends(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    assert auth.authenticate(key.secret).member
    conn.execute(
        "DELETE FROM memberships WHERE account_id = %s AND user_id = %s",
        (owner.account_id, owner.user_id),
    )
    with pytest.raises(errors.RevokedApiKey, match="no longer a member") as raised:
        auth.authenticate(key.secret, max_age_s=0)
    assert (raised.value.status, raised.value.code) == (401, "revoked_api_key")


# --- news of changes: revalidate and announce (the store side is in test_limiter.py) ----


def test_a_cached_caller_is_looked_up_again_when_a_newer_version_is_announced(
    conn: psycopg.Connection,
) -> None:
    key = new_key(new_owner())
    auth.authenticate(key.secret, now=CLOCK)
    cached = auth.authenticate(key.secret, now=CLOCK + 1)
    assert cached.cached
    conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.id,))
    # The store has no news yet: the cached caller stands, without a lookup.
    assert auth.revalidate(key.secret, cached, cached.auth_version, now=CLOCK + 1) is cached
    with pytest.raises(errors.RevokedApiKey):
        auth.revalidate(key.secret, cached, cached.auth_version + 1, now=CLOCK + 1)
    # The cache now holds the revoked key too.
    with pytest.raises(errors.RevokedApiKey):
        auth.authenticate(key.secret, now=CLOCK + 2)


def test_a_fresh_caller_is_not_looked_up_twice(conn: psycopg.Connection) -> None:
    key = new_key(new_owner())
    fresh = auth.authenticate(key.secret, now=CLOCK)
    assert not fresh.cached
    conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.id,))
    # Looked up during this request: as fresh as the version the store just reported.
    assert auth.revalidate(key.secret, fresh, fresh.auth_version + 1, now=CLOCK) is fresh


def test_without_the_store_a_cached_caller_is_trusted_for_a_few_seconds_only(
    conn: psycopg.Connection,
) -> None:
    key = new_key(new_owner())
    auth.authenticate(key.secret, now=CLOCK)
    cached = auth.authenticate(key.secret, now=CLOCK)
    conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.id,))
    soon = CLOCK + auth.STALE_WITHOUT_STORE_S - 0.5
    assert auth.revalidate(key.secret, cached, None, now=soon) is cached
    with pytest.raises(errors.RevokedApiKey):
        auth.revalidate(key.secret, cached, None, now=CLOCK + auth.STALE_WITHOUT_STORE_S)


def test_a_deleted_key_leaves_the_cache_when_looked_up_again(conn: psycopg.Connection) -> None:
    key = new_key(new_owner())
    auth.authenticate(key.secret, now=CLOCK)
    cached = auth.authenticate(key.secret, now=CLOCK)
    conn.execute("DELETE FROM api_keys WHERE id = %s", (key.id,))
    with pytest.raises(errors.InvalidApiKey):
        auth.revalidate(key.secret, cached, cached.auth_version + 1, now=CLOCK)
    with pytest.raises(errors.InvalidApiKey):
        auth.authenticate(key.secret, now=CLOCK)


def test_announce_publishes_the_accounts_version(store: Store, conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    caller = auth.authenticate(key.secret)
    with db.transaction() as cur:
        version = keys.revoke(cur, key.id, owner.account_id)
    assert version is not None
    assert version > caller.auth_version
    auth.announce(owner.account_id, store=store)  # read from the database
    assert store.hit([], version_key=limiter.version_key(owner.account_id)).version == version
    auth.announce(owner.account_id, version - 1, store=store)  # a late announcement
    assert store.hit([], version_key=limiter.version_key(owner.account_id)).version == version


def test_announce_survives_an_unreachable_store() -> None:
    owner = new_owner()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    auth.announce(owner.account_id, 5, store=RedisStore.from_url(f"redis://127.0.0.1:{port}/0"))
