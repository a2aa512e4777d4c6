"""Who may use the keys routes (every route, through real API Gateway events): a key that
is missing, unknown, expired, revoked, disabled or rotated out, outside its IP or origin
allowlist or without the route's scope is refused with its exact code, and a refused
request changes nothing and writes no audit row."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import config, db
from gatewayz.identity import auth, keys
from tests.factories import new_key, new_owner
from tests.functions.keys_api import audit_rows, call, key_row

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")

# (method, path, body, scope it needs, success status); {id} is another key of the account.
ROUTES = [
    ("GET", "/v1/keys", None, "keys:read", 200),
    ("POST", "/v1/keys", {"name": "new"}, "keys:write", 201),
    ("GET", "/v1/keys/{id}", None, "keys:read", 200),
    ("PATCH", "/v1/keys/{id}", {"name": "renamed", "disabled": True}, "keys:write", 200),
    ("DELETE", "/v1/keys/{id}", None, "keys:write", 200),
    ("POST", "/v1/keys/{id}/rotate", {"grace_period_hours": 0}, "keys:write", 200),
    ("GET", "/v1/key", None, None, 200),
]
ROUTE_IDS = [f"{method} {path}" for method, path, *_ in ROUTES]


def make_rotated(grace: timedelta) -> Callable[[str], None]:
    def rotate(key_id: str) -> None:
        with db.transaction() as cur:
            keys.rotate(cur, key_id, environment="live", pepper=config.key_hash_secret(),
                        grace=grace)  # fmt: skip

    return rotate


# Caller states: (columns of the caller's key, what to do to it, request extras, refusal).
CASES: dict[str, tuple[dict[str, Any], Callable[[str], None] | None, dict[str, Any], Any]] = {
    "expired": ({"expires_at": "2020-01-01T00:00:00Z"}, None, {}, (401, "expired_api_key")),
    "revoked": ({"revoked_at": "2020-01-01T00:00:00Z"}, None, {}, (401, "revoked_api_key")),
    "disabled": ({"disabled": True}, None, {}, (401, "disabled_api_key")),
    "rotated_past_grace": ({}, make_rotated(timedelta(0)), {}, (401, "revoked_api_key")),
    "ip_outside_allowlist_forged_xff": (
        {"allowed_cidrs": ["192.0.2.0/24"]},
        None,
        {"ip": "198.51.100.9", "headers": {"X-Forwarded-For": "192.0.2.1"}},
        (403, "ip_not_allowed"),
    ),
    "referer_outside_allowlist": (
        {"allowed_referers": ["app.example.com"]},
        None,
        {"headers": {"Referer": "https://evil.example.net/page"}},
        (403, "referer_not_allowed"),
    ),
}


def target_state(conn: psycopg.Connection, key_id: str) -> tuple[Any, ...]:
    secrets = conn.execute(
        "SELECT count(*), count(expires_at) FROM api_key_secrets WHERE key_id = %s", (key_id,)
    ).fetchone()
    keys_in_account = conn.execute(
        "SELECT count(*) FROM api_keys WHERE account_id = "
        "(SELECT account_id FROM api_keys WHERE id = %s)",
        (key_id,),
    ).fetchone()
    return (key_row(conn, key_id), secrets, keys_in_account, audit_rows(conn, key_id))


def audit_count(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute("SELECT count(*) FROM audit_log WHERE account_id = %s", (account_id,))
    found = row.fetchone()
    assert found is not None
    return int(found[0])


@pytest.mark.parametrize(("method", "path", "body", "scope", "ok"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("case", list(CASES))
def test_a_key_that_cannot_be_used_is_refused_and_changes_nothing(
    conn: psycopg.Connection, case: str, method: str, path: str, body: Any, scope: str, ok: int
) -> None:
    columns, then, extras, (status, code) = CASES[case]
    owner = new_owner()
    caller = new_key(owner, **columns)
    target = new_key(owner)
    if then is not None:
        then(caller.id)
    auth.forget()
    before, audits = target_state(conn, target.id), audit_count(conn, owner.account_id)
    reply = call(method, path.format(id=target.id), caller.secret, body, **extras)
    assert (reply.status, reply.code) == (status, code), reply.raw
    assert target_state(conn, target.id) == before
    assert audit_count(conn, owner.account_id) == audits


@pytest.mark.parametrize(("method", "path", "body", "scope", "ok"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    ("secret", "code"),
    [
        (None, "invalid_api_key"),
        ("gw_live_" + "A" * 32, "invalid_api_key"),
        ("not-a-key", "invalid_api_key"),
    ],
    ids=["no_key", "unknown_key", "garbage"],
)
def test_no_key_or_an_unknown_one_is_a_401(
    conn: psycopg.Connection, secret: str | None, code: str, method: str, path: str, body: Any,
    scope: str, ok: int,
) -> None:  # fmt: skip
    owner = new_owner()
    target = new_key(owner)
    before = target_state(conn, target.id)
    reply = call(method, path.format(id=target.id), secret, body)
    if secret == "not-a-key" and path != "/v1/key":
        # Management routes also take a Supabase session: a bearer that is not a key is
        # read as one. `/v1/key` is about the calling key: no key there is a bad key.
        code = "invalid_session"
    assert (reply.status, reply.code) == (401, code), reply.raw
    assert target_state(conn, target.id) == before


@pytest.mark.parametrize(("method", "path", "body", "scope", "ok"), ROUTES, ids=ROUTE_IDS)
def test_each_route_works_for_a_key_inside_every_rule(
    conn: psycopg.Connection, method: str, path: str, body: Any, scope: str, ok: int
) -> None:
    """The refusals above are about the rule: the same request from a key inside its
    allowlists, still in its rotation grace, answers with success."""
    owner = new_owner()
    caller = new_key(owner, allowed_cidrs=["192.0.2.0/24"], allowed_referers=["*.example.com"])
    make_rotated(timedelta(hours=1))(caller.id)  # the old secret is inside its grace
    # No wider than the caller, who may then rotate it and learn its secret.
    target = new_key(owner, allowed_cidrs=["192.0.2.0/25"], allowed_referers=["*.example.com"])
    headers = {"Referer": "https://app.example.com/x", "X-Forwarded-For": "1.2.3.4"}
    reply = call(method, path.format(id=target.id), caller.secret, body, ip="192.0.2.44",
                 headers=headers)  # fmt: skip
    assert reply.status == ok, reply.raw
    if method != "GET":
        actions = [row[0] for row in conn.execute(
            "SELECT action FROM audit_log WHERE account_id = %s AND actor_key_id = %s",
            (owner.account_id, caller.id))]  # fmt: skip
        assert len(actions) == 1
        assert actions[0].startswith("key.")


@pytest.mark.parametrize(
    ("method", "path", "body", "scope", "ok"), [r for r in ROUTES if r[3]], ids=ROUTE_IDS[:-1]
)
def test_a_key_without_the_routes_scope_is_refused(
    conn: psycopg.Connection, method: str, path: str, body: Any, scope: str, ok: int
) -> None:
    owner = new_owner()
    other = "keys:write" if scope == "keys:read" else "keys:read"
    caller = new_key(owner, scopes=["chat", other])
    target = new_key(owner)
    before = target_state(conn, target.id)
    reply = call(method, path.format(id=target.id), caller.secret, body)
    assert (reply.status, reply.code) == (403, "scope_denied"), reply.raw
    assert scope in reply.body["error"]["message"]
    assert target_state(conn, target.id) == before


def test_any_scope_reads_the_calling_key() -> None:
    caller = new_key(new_owner(), scopes=["models:read"])
    reply = call("GET", "/v1/key", caller.secret)
    assert reply.status == 200, reply.raw
    assert (reply.body["data"]["id"], reply.body["data"]["scopes"]) == (caller.id, ["models:read"])


@pytest.mark.parametrize(("method", "path", "body", "scope", "ok"), ROUTES[2:6], ids=ROUTE_IDS[2:6])
def test_another_accounts_key_id_is_a_404_and_nothing_changes(
    conn: psycopg.Connection, method: str, path: str, body: Any, scope: str, ok: int
) -> None:
    caller = new_key(new_owner())
    stranger = new_key(new_owner())
    before = target_state(conn, stranger.id)
    reply = call(method, path.format(id=stranger.id), caller.secret, body)
    assert (reply.status, reply.code) == (404, "not_found"), reply.raw
    assert target_state(conn, stranger.id) == before
    assert stranger.secret not in reply.raw
    # The stranger's key still works.
    assert call("GET", "/v1/key", stranger.secret).status == 200


@pytest.mark.parametrize(("method", "path", "body", "scope", "ok"), ROUTES[2:6], ids=ROUTE_IDS[2:6])
def test_an_id_that_is_not_a_key_id_is_a_404(
    method: str, path: str, body: Any, scope: str, ok: int
) -> None:
    caller = new_key(new_owner())
    reply = call(method, path.format(id="not-a-uuid"), caller.secret, body)
    assert (reply.status, reply.code, reply.body["error"]["param"]) == (404, "not_found", "id")
