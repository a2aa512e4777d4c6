"""Who may manage which keys, and what a key may grant: members reach only their own
keys, owners and admins the account's; no key grants more than it holds; per-key rate
limits above the plan only from a platform admin; the plan's max_keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from tests.factories import new_key, new_owner
from tests.functions.keys_api import audit_rows, call, key_row, member_key

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def soon(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_a_member_sees_and_changes_only_their_own_keys(conn: psycopg.Connection) -> None:
    owner = new_owner()
    owners_key = new_key(owner)
    member = member_key(owner, "member")
    mine = call("POST", "/v1/keys", member.secret, {"name": "mine"}).body["data"]["id"]
    listed = {key["id"] for key in call("GET", "/v1/keys", member.secret).body["data"]}
    assert listed == {member.id, mine}
    before = key_row(conn, owners_key.id)
    for method, path, body in (
        ("GET", "", None), ("PATCH", "", {"name": "x"}), ("DELETE", "", None),
        ("POST", "/rotate", {}),
    ):  # fmt: skip
        reply = call(method, f"/v1/keys/{owners_key.id}{path}", member.secret, body)
        assert (reply.status, reply.code) == (404, "not_found"), (method, path)
    assert key_row(conn, owners_key.id) == before
    assert audit_rows(conn, owners_key.id) == []
    changed = call("PATCH", f"/v1/keys/{mine}", member.secret, {"name": "still mine"})
    assert changed.body["data"]["name"] == "still mine"


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_owners_and_admins_manage_every_key_of_the_account(
    conn: psycopg.Connection, role: str
) -> None:
    owner = new_owner()
    manager = new_key(owner) if role == "owner" else member_key(owner, "admin")
    member = member_key(owner, "member", scopes=("chat",))
    listed = {key["id"] for key in call("GET", "/v1/keys", manager.secret).body["data"]}
    assert member.id in listed
    reply = call("PATCH", f"/v1/keys/{member.id}", manager.secret, {"disabled": True})
    assert reply.status == 200, reply.raw
    assert audit_rows(conn, member.id)[-1][:3] == ("key.update", "key", manager.id)
    revoked = call("DELETE", f"/v1/keys/{member.id}", manager.secret)
    assert revoked.body["data"]["revoked_at"] is not None
    assert [row[0] for row in audit_rows(conn, member.id)] == ["key.update", "key.revoke"]


# (the caller's columns, the body asked for, the field refused)
ESCALATIONS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"scopes": ["keys:write", "chat"]}, {"scopes": ["chat", "billing:write"]}, "scopes"),
    ({"scopes": ["keys:write", "chat"]}, {"scopes": ["admin"]}, "scopes"),
    ({"spend_limit_nanos": 5_000_000_000}, {"limit": 6}, "limit"),
    ({"spend_limit_nanos": 5_000_000_000}, {"limit": None}, "limit"),
    ({"spend_limit_nanos": 5_000_000_000, "limit_reset": "monthly"},
     {"limit": 5, "limit_reset": "daily"}, "limit_reset"),
    ({"allowed_models": ["openai/*"]}, {"allowed_models": ["anthropic/*"]}, "allowed_models"),
    ({"allowed_models": ["openai/gpt-4o"]}, {"allowed_models": ["openai/*"]}, "allowed_models"),
    ({"allowed_models": ["openai/*"]}, {"allowed_models": None}, "allowed_models"),
    ({"allowed_cidrs": ["203.0.113.0/24"]}, {"allowed_cidrs": ["203.0.0.0/16"]}, "allowed_cidrs"),
    ({"allowed_cidrs": ["203.0.113.0/24"]}, {"allowed_cidrs": ["::/0"]}, "allowed_cidrs"),
    ({"allowed_referers": ["*.example.com"]}, {"allowed_referers": ["example.com"]},
     "allowed_referers"),
    ({"allowed_referers": ["*.example.com"]}, {"allowed_referers": ["*.evilexample.com"]},
     "allowed_referers"),
    ({"expires_at": soon(1)}, {"expires_at": soon(2)}, "expires_at"),
    ({"expires_at": soon(1)}, {"expires_at": None}, "expires_at"),
    ({"requests_per_minute": 10}, {"requests_per_minute": 11}, "requests_per_minute"),
    ({"concurrent_requests": 2}, {"concurrent_requests": None}, "concurrent_requests"),
    ({}, {"requests_per_minute": 121}, "requests_per_minute"),  # payg's plan allows 120
    ({}, {"tokens_per_minute": 10_000_000}, "tokens_per_minute"),
]  # fmt: skip


@pytest.mark.parametrize(("own", "asked", "field"), ESCALATIONS)
@pytest.mark.parametrize("how", ["create", "update"])
def test_a_key_cannot_grant_more_than_it_holds(
    conn: psycopg.Connection, own: dict[str, Any], asked: dict[str, Any], field: str, how: str
) -> None:
    owner = new_owner()
    caller = new_key(owner, **own)
    target = new_key(owner, scopes=["chat"], spend_limit_nanos=1, allowed_models=["openai/x"],
                     allowed_cidrs=["203.0.113.1/32"], allowed_referers=["a.example.com"],
                     expires_at=soon(1), requests_per_minute=1, concurrent_requests=1)  # fmt: skip
    headers = {"Referer": "https://a.example.com/"}
    keys_before = conn.execute("SELECT count(*) FROM api_keys").fetchone()
    before = key_row(conn, target.id)
    if how == "create":
        reply = call("POST", "/v1/keys", caller.secret, {"name": "more", **asked}, headers=headers)
    else:
        reply = call("PATCH", f"/v1/keys/{target.id}", caller.secret, asked, headers=headers)
    assert (reply.status, reply.code, reply.body["error"]["param"]) == (
        403, "escalation_denied", field), reply.raw  # fmt: skip
    assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == keys_before
    assert key_row(conn, target.id) == before
    assert audit_rows(conn, target.id) == []


def test_a_new_key_takes_the_callers_restrictions_unless_it_narrows_them() -> None:
    owner = new_owner()
    caller = new_key(owner, scopes=["keys:write", "keys:read", "chat"],
                     spend_limit_nanos=5 * 10**9, limit_reset="weekly",
                     allowed_models=["openai/*"], requests_per_minute=9)  # fmt: skip
    inherited = call("POST", "/v1/keys", caller.secret, {"name": "child"})
    assert inherited.status == 201, inherited.raw
    data = inherited.body["data"]
    assert (data["scopes"], data["limit"], data["limit_reset"], data["allowed_models"],
            data["requests_per_minute"]) == (["chat", "keys:read", "keys:write"], 5.0, "weekly",
                                             ["openai/*"], 9)  # fmt: skip
    narrower = call("POST", "/v1/keys", caller.secret, {
        "name": "narrow", "scopes": ["chat"], "limit": 1, "allowed_models": ["openai/gpt-4o"],
        "requests_per_minute": 3})  # fmt: skip
    assert narrower.status == 201, narrower.raw
    assert narrower.body["data"]["limit_reset"] is None  # a one-off $1 grants less than $5 weekly


def test_a_limit_and_its_reset_are_checked_together_on_update(conn: psycopg.Connection) -> None:
    owner = new_owner()
    caller = new_key(owner, spend_limit_nanos=5 * 10**9, limit_reset="monthly")
    target = new_key(owner, spend_limit_nanos=10**9, limit_reset="daily")
    before = key_row(conn, target.id)
    reply = call("PATCH", f"/v1/keys/{target.id}", caller.secret, {"limit": 5})
    assert (reply.status, reply.code, reply.body["error"]["param"]) == (
        403, "escalation_denied", "limit_reset")  # fmt: skip
    assert key_row(conn, target.id) == before
    lowered = call("PATCH", f"/v1/keys/{target.id}", caller.secret, {"limit": 0.5})
    assert lowered.status == 403  # still daily, which the caller's monthly limit is not
    ok = call("PATCH", f"/v1/keys/{target.id}", caller.secret, {"limit": 5, "limit_reset": None})
    assert ok.status == 200, ok.raw
    assert (ok.body["data"]["limit"], ok.body["data"]["limit_reset"]) == (5.0, None)


def test_a_key_may_not_rotate_a_key_that_holds_more(conn: psycopg.Connection) -> None:
    owner = new_owner()
    wider = new_key(owner)
    narrow = new_key(owner, scopes=["keys:write"])
    secrets = conn.execute("SELECT hash FROM api_key_secrets WHERE key_id = %s", (wider.id,))
    before = secrets.fetchall()
    reply = call("POST", f"/v1/keys/{wider.id}/rotate", narrow.secret, {})
    assert (reply.status, reply.code, reply.body["error"]["param"]) == (
        403, "escalation_denied", "scopes")  # fmt: skip
    after = conn.execute("SELECT hash FROM api_key_secrets WHERE key_id = %s", (wider.id,))
    assert after.fetchall() == before
    assert call("GET", "/v1/key", wider.secret).status == 200


def test_only_a_platform_admin_sets_per_key_limits_above_the_plan(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_admin = true WHERE id = %s", (owner.user_id,))
    without_scope = new_key(owner)  # a platform admin's key, but without `admin`
    refused = call("POST", "/v1/keys", without_scope.secret,
                   {"name": "big", "requests_per_minute": 5000})  # fmt: skip
    assert (refused.status, refused.code) == (403, "escalation_denied")
    admin = new_key(owner, scopes=["admin"])
    reply = call("POST", "/v1/keys", admin.secret, {"name": "big", "requests_per_minute": 5000})
    assert reply.status == 201, reply.raw
    data = reply.body["data"]
    assert (data["requests_per_minute"], data["limits_set_by_admin"]) == (5000, True)
    current = call("GET", "/v1/key", reply.body["key"]).body["data"]["rate_limits"]
    assert current["requests_per_minute"] == 5000
    # An `admin` key of a user who is no platform admin stays within the plan.
    ordinary = new_key(new_owner(), scopes=["admin"])
    capped = call("POST", "/v1/keys", ordinary.secret, {"name": "big", "requests_per_minute": 5000})
    assert (capped.status, capped.code) == (403, "escalation_denied")


def test_the_plans_max_keys_caps_live_keys(conn: psycopg.Connection) -> None:
    owner = new_owner(plan_id="free")  # max_keys = 2
    first = new_key(owner)
    expired = new_key(owner)
    conn.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
                 (expired.id,))  # fmt: skip
    second = call("POST", "/v1/keys", first.secret, {"name": "second"})
    assert second.status == 201, second.raw
    refused = call("POST", "/v1/keys", first.secret, {"name": "third"})
    assert (refused.status, refused.code) == (403, "max_keys_reached")
    assert "2" in refused.body["error"]["message"]
    count = conn.execute("SELECT count(*) FROM api_keys WHERE account_id = %s",
                         (owner.account_id,)).fetchone()  # fmt: skip
    assert count == (3,)
    call("DELETE", f"/v1/keys/{second.body['data']['id']}", first.secret)
    assert call("POST", "/v1/keys", first.secret, {"name": "third"}).status == 201
