"""The keys routes at work (through real API Gateway events): create, list, read, change,
revoke and rotate keys, the calling key's usage, the 400s, and the secret shown once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.billing import credits
from gatewayz.logs import get_logger
from tests.factories import fund, new_hold, new_key, new_owner
from tests.functions.keys_api import audit_rows, call

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def spend(account_id: str, key_id: str, nanos: int) -> None:
    """A request of the key that cost `nanos`, settled as the chat path settles it."""
    hold = new_hold(account_id, nanos, key_id=key_id)
    db.run(credits.settle(hold, credits.UsageRecord(endpoint="chat", model="m", status=200,
                                             cost_nanos=nanos)))  # fmt: skip


def test_create_shows_the_secret_once_and_the_key_works(conn: psycopg.Connection) -> None:
    owner = new_owner()
    admin = new_key(owner)
    expires = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = {
        "name": "ci", "environment": "test", "scopes": ["chat", "models:read"],
        "allowed_models": ["openai/*", "mistral/small"],
        "allowed_cidrs": ["10.1.2.3/16", "2001:db8::/32"],
        "allowed_referers": ["*.Example.com", "app.test.io"], "expires_at": expires,
        "limit": 2.5, "limit_reset": "weekly", "requests_per_minute": 10, "requests_per_day": 100,
        "tokens_per_minute": 1000, "concurrent_requests": 2, "rotation_period_days": 30,
    }  # fmt: skip
    reply = call("POST", "/v1/keys", admin.secret, body)
    assert reply.status == 201, reply.raw
    secret, key = reply.body["key"], reply.body["data"]
    assert secret.startswith("gw_test_")
    assert len(secret) == len("gw_test_") + 32
    assert (key["prefix"], key["last4"]) == (secret[:12], secret[-4:])
    expected = {**body, "allowed_cidrs": ["10.1.0.0/16", "2001:db8::/32"],
                "allowed_models": ["mistral/small", "openai/*"],
                "allowed_referers": ["*.example.com", "app.test.io"]}  # fmt: skip
    for name, value in expected.items():
        if name != "expires_at":
            assert key[name] == value, name
    assert datetime.fromisoformat(key["expires_at"]) == datetime.fromisoformat(expires)
    assert (key["limit_remaining"], key["usage"], key["disabled"], key["revoked_at"]) == (
        2.5, 0, False, None)  # fmt: skip
    # The new key authenticates (from inside its allowlists) and sees itself.
    mine = call(
        "GET", "/v1/key", secret, ip="10.1.9.9", headers={"Origin": "https://a.example.com"}
    )
    assert (mine.status, mine.body["data"]["id"], mine.body["data"]["label"]) == (
        200,
        key["id"],
        "ci",
    )
    assert mine.body["data"]["rate_limits"]["requests_per_minute"] == 10
    assert audit_rows(conn, key["id"])[0][:3] == ("key.create", "key", admin.id)
    assert secret not in json.dumps(audit_rows(conn, key["id"]), default=str)


def test_get_key_reports_usage_by_window_and_what_the_limit_leaves() -> None:
    owner = new_owner()
    fund(owner.account_id, 10_000_000_000)
    caller = new_key(owner)
    created = call("POST", "/v1/keys", caller.secret, {"name": "spender", "limit": 1})
    key_id = created.body["data"]["id"]
    spend(owner.account_id, key_id, 250_000_000)
    spend(owner.account_id, key_id, 50_000_000)
    shown = call("GET", f"/v1/keys/{key_id}", caller.secret).body["data"]
    assert {k: shown[k] for k in ("usage", "usage_daily", "usage_weekly", "usage_monthly",
                                  "limit_remaining")} == {
        "usage": 0.3, "usage_daily": 0.3, "usage_weekly": 0.3, "usage_monthly": 0.3,
        "limit_remaining": 0.7}  # fmt: skip
    current = call("GET", "/v1/key", created.body["key"]).body["data"]
    assert (current["usage"], current["limit"], current["limit_remaining"]) == (0.3, 1.0, 0.7)


def test_list_pages_with_a_cursor_newest_first() -> None:
    owner = new_owner()
    caller = new_key(owner)
    made = [call("POST", "/v1/keys", caller.secret, {"name": f"k{i}"}).body["data"]["id"]
            for i in range(5)]  # fmt: skip
    seen: list[str] = []
    cursor = None
    for _ in range(4):
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = call("GET", "/v1/keys", caller.secret, query=query)
        assert page.status == 200, page.raw
        assert len(page.body["data"]) <= 2
        seen += [key["id"] for key in page.body["data"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == [*reversed(made), caller.id]
    # Revoked keys are listed only on request.
    call("DELETE", f"/v1/keys/{made[0]}", caller.secret)
    listed = call("GET", "/v1/keys", caller.secret).body["data"]
    assert made[0] not in [key["id"] for key in listed]
    everything = call("GET", "/v1/keys", caller.secret, query={"include_revoked": "true"})
    assert made[0] in [key["id"] for key in everything.body["data"]]


@pytest.mark.parametrize(
    ("query", "param"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit"),
     ({"cursor": "!!"}, "cursor"), ({"cursor": "WyJ4IiwieSJd"}, "cursor"),
     ({"include_revoked": "yes"}, "include_revoked")],
)  # fmt: skip
def test_bad_list_parameters_are_400s(query: dict[str, str], param: str) -> None:
    reply = call("GET", "/v1/keys", new_key(new_owner()).secret, query=query)
    assert (reply.status, reply.code, reply.body["error"]["param"]) == (
        400, "invalid_request_error", param)  # fmt: skip


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"), ({"name": ""}, "name"), ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "allowed_cidrs": ["10.0.0.0/33"]}, "allowed_cidrs"),
        ({"name": "x", "allowed_cidrs": ["example.com"]}, "allowed_cidrs"),
        ({"name": "x", "allowed_referers": ["https://app.example.com"]}, "allowed_referers"),
        ({"name": "x", "allowed_referers": ["*.*.example.com"]}, "allowed_referers"),
        ({"name": "x", "allowed_models": ["gpt-4o"]}, "allowed_models"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "expires_at": "soon"}, "expires_at"),
        ({"name": "x", "limit": -1}, "limit"), ({"name": "x", "limit": "5"}, "limit"),
        ({"name": "x", "limit": 0.0000000001}, "limit"),
        ({"name": "x", "limit_reset": "hourly"}, "limit_reset"),
        ({"name": "x", "requests_per_minute": 0}, "requests_per_minute"),
        ({"name": "x", "requests_per_minute": True}, "requests_per_minute"),
        ({"name": "x", "environment": "prod"}, "environment"),
        ({"name": "x", "rotation_period_days": 0}, "rotation_period_days"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_invalid_fields_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    owner = new_owner()
    reply = call("POST", "/v1/keys", new_key(owner).secret, body)
    assert (reply.status, reply.code, reply.body["error"]["param"]) == (
        400, "invalid_request_error", param), reply.raw  # fmt: skip


def test_a_body_that_is_not_json_is_a_400() -> None:
    reply = call("POST", "/v1/keys", new_key(new_owner()).secret, '{"name": NaN}')
    assert (reply.status, reply.code) == (400, "invalid_json")
    reply = call("POST", "/v1/keys", new_key(new_owner()).secret, "[1]")
    assert (reply.status, reply.code) == (400, "invalid_request_error")


def test_update_changes_what_was_sent_and_audits_before_and_after(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    caller = new_key(owner)
    made = call("POST", "/v1/keys", caller.secret, {"name": "a", "limit": 5}).body
    key_id = made["data"]["id"]
    reply = call("PATCH", f"/v1/keys/{key_id}", caller.secret,
                 {"name": "b", "limit": 3, "allowed_models": ["openai/*"]})  # fmt: skip
    assert reply.status == 200, reply.raw
    shown = reply.body["data"]
    assert (shown["name"], shown["limit"], shown["allowed_models"], shown["scopes"]) == (
        "b", 3.0, ["openai/*"], made["data"]["scopes"])  # fmt: skip
    action, kind, actor, before, after = audit_rows(conn, key_id)[-1]
    assert (action, kind, actor) == ("key.update", "key", caller.id)
    assert (before["name"], before["limit"], after["name"], after["limit"]) == ("a", 5.0, "b", 3.0)
    # Null clears an allowlist; `name` and `disabled` cannot be null.
    cleared = call("PATCH", f"/v1/keys/{key_id}", caller.secret, {"allowed_models": None})
    assert cleared.body["data"]["allowed_models"] is None
    bad = call("PATCH", f"/v1/keys/{key_id}", caller.secret, {"name": None})
    assert (bad.status, bad.body["error"]["param"]) == (400, "name")


def test_a_disabled_key_is_refused_until_enabled_again(conn: psycopg.Connection) -> None:
    owner = new_owner()
    caller = new_key(owner)
    target = new_key(owner)
    assert call("GET", "/v1/key", target.secret).status == 200  # cached now
    off = call("PATCH", f"/v1/keys/{target.id}", caller.secret, {"disabled": True})
    assert off.body["data"]["disabled"] is True
    refused = call("GET", "/v1/key", target.secret)
    assert (refused.status, refused.code) == (401, "disabled_api_key")
    call("PATCH", f"/v1/keys/{target.id}", caller.secret, {"disabled": False})
    assert call("GET", "/v1/key", target.secret).status == 200
    assert [row[0] for row in audit_rows(conn, target.id)] == ["key.update", "key.update"]


def test_revoke_answers_the_revoked_key_and_it_is_refused_next(conn: psycopg.Connection) -> None:
    owner = new_owner()
    caller = new_key(owner)
    target = new_key(owner)
    reply = call("DELETE", f"/v1/keys/{target.id}", caller.secret)
    assert reply.status == 200
    assert reply.body["data"]["revoked_at"] is not None
    refused = call("GET", "/v1/key", target.secret)
    assert (refused.status, refused.code) == (401, "revoked_api_key")
    again = call("DELETE", f"/v1/keys/{target.id}", caller.secret)
    assert again.body["data"]["revoked_at"] == reply.body["data"]["revoked_at"]
    assert [row[0] for row in audit_rows(conn, target.id)] == ["key.revoke"]
    for method, path in (("PATCH", ""), ("POST", "/rotate")):
        conflict = call(method, f"/v1/keys/{target.id}{path}", caller.secret, {})
        assert (conflict.status, conflict.code) == (409, "key_revoked")


@pytest.mark.parametrize("grace", [None, 0, 1.5])
def test_rotate_gives_a_new_secret_and_ends_the_old_after_the_grace(
    conn: psycopg.Connection, grace: float | None
) -> None:
    owner = new_owner()
    caller = new_key(owner)
    target = new_key(owner)
    body = None if grace is None else {"grace_period_hours": grace}
    reply = call("POST", f"/v1/keys/{target.id}/rotate", caller.secret, body)
    assert reply.status == 200, reply.raw
    new_secret = reply.body["key"]
    assert new_secret != target.secret
    assert (reply.body["data"]["id"], reply.body["data"]["last4"]) == (target.id, new_secret[-4:])
    assert call("GET", "/v1/key", new_secret).body["data"]["id"] == target.id
    old = call("GET", "/v1/key", target.secret)
    hours = 24 if grace is None else grace
    if hours == 0:
        assert (old.status, old.code) == (401, "revoked_api_key")
    else:
        assert old.status == 200
        row = conn.execute(
            "SELECT expires_at - now() FROM api_key_secrets WHERE key_id = %s AND expires_at "
            "IS NOT NULL", (target.id,)).fetchone()  # fmt: skip
        assert row is not None
        assert timedelta(hours=hours) - timedelta(minutes=1) < row[0] <= timedelta(hours=hours)
    action, _, actor, before, after = audit_rows(conn, target.id)[-1]
    assert (action, actor, before["last4"], after["last4"]) == (
        "key.rotate", caller.id, target.last4, new_secret[-4:])  # fmt: skip


def test_rotate_refuses_a_bad_grace_period() -> None:
    owner = new_owner()
    caller = new_key(owner)
    for grace in (-1, 721, "1"):
        reply = call("POST", f"/v1/keys/{caller.id}/rotate", caller.secret,
                     {"grace_period_hours": grace})  # fmt: skip
        assert (reply.status, reply.body["error"]["param"]) == (400, "grace_period_hours")


def test_the_secret_appears_in_no_later_response_log_line_or_column(
    conn: psycopg.Connection, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = get_logger()
    level = logger.log_level
    logger.setLevel("DEBUG")  # every line the keys function can write
    try:
        replies, secrets = exercise_a_key()
    finally:
        logger.setLevel(level)
    for reply in replies:
        assert all(secret not in reply.raw for secret in secrets)
    # The logger's records, and the request lines (written straight to standard output).
    logged = " ".join(str(vars(record)) for record in caplog.records) + capsys.readouterr().out
    assert '"path":"/v1/keys' in logged  # the request lines were written, with their fields
    assert all(secret not in logged for secret in secrets)
    for table in ("api_keys", "api_key_secrets", "audit_log", "email_outbox", "usage_records"):
        text = " ".join(row[0] for row in conn.execute(f"SELECT t::text FROM {table} t"))
        assert all(secret[8:] not in text for secret in secrets), table


def exercise_a_key() -> tuple[list[Any], tuple[str, str]]:
    """Create a key and rotate it, then use it and manage it: the later replies, and the
    two secrets."""
    owner = new_owner()
    caller = new_key(owner)
    created = call("POST", "/v1/keys", caller.secret, {"name": "once", "rotation_period_days": 1})
    secret, key_id = created.body["key"], created.body["data"]["id"]
    rotated = call("POST", f"/v1/keys/{key_id}/rotate", caller.secret, {})
    second = rotated.body["key"]
    later = [
        call("GET", "/v1/keys", caller.secret),
        call("GET", f"/v1/keys/{key_id}", caller.secret),
        call("GET", "/v1/key", secret),
        call("GET", "/v1/key", second),
        call("PATCH", f"/v1/keys/{key_id}", caller.secret, {"name": "renamed"}),
        call("GET", "/v1/keys", second),
        call("DELETE", f"/v1/keys/{key_id}", caller.secret),
        call("GET", "/v1/key", secret),
    ]
    return later, (secret, second)


def test_an_unknown_key_id_and_a_well_formed_one_answer_alike() -> None:
    caller = new_key(new_owner())
    missing = call("GET", f"/v1/keys/{uuid.uuid4()}", caller.secret)
    assert (missing.status, missing.code) == (404, "not_found")
