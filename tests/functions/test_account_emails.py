"""E-mail through `/v1/account` (the keys function, real API Gateway events): the welcome
e-mail queued once at sign-up, and the e-mail preferences: shown, changed (audited),
checked, and honoured when notices are queued."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.email import outbox
from tests.factories import new_key, new_owner
from tests.fakes.supabase_auth import HS256_SECRET, claims, project, sign
from tests.functions.events import event, invoke, json_body
from tests.functions.keys_api import call, member_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

    from tests.fakes.supabase_auth import FakeAuth

pytestmark = pytest.mark.usefixtures("database_url")
ALL_ON = dict.fromkeys(sorted(outbox.OPTIONAL), True)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAuth]:
    with project(monkeypatch) as served:
        yield served


def sign_up(fake: FakeAuth, email: str, *, verified: bool = True) -> dict[str, Any]:
    token = sign(claims(email, sub=str(uuid.uuid4()), verified=verified, iss=fake.issuer),
                 HS256_SECRET)  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    result = invoke("keys", event("keys", httpMethod="POST", path="/v1/account", headers=headers))
    assert result["statusCode"] in (200, 201), result["body"]
    body: dict[str, Any] = json_body(result)
    return body


def welcome_rows(conn: psycopg.Connection, email: str) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT template, payload FROM email_outbox WHERE to_address = %s", (email,)
    ).fetchall()
    return [tuple(row) for row in rows]


def test_sign_up_queues_one_welcome_email(fake: FakeAuth, conn: psycopg.Connection) -> None:
    email = f"w-{uuid.uuid4().hex[:8]}@example.com"
    created = sign_up(fake, email)
    assert created["data"]["account"]["email_preferences"] == ALL_ON
    assert welcome_rows(conn, email) == [("welcome", {"trial_credit_nanos": 10_000_000_000})]
    unverified = f"u-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(fake, unverified, verified=False)
    assert welcome_rows(conn, unverified) == [("welcome", {})]


def test_preferences_are_shown_and_changed_by_the_owner(conn: psycopg.Connection) -> None:
    key = new_key(new_owner())
    shown = call("GET", "/v1/account", key.secret)
    assert shown.status == 200
    assert shown.body["data"]["account"]["email_preferences"] == ALL_ON
    changed = call("PATCH", "/v1/account", key.secret,
                   {"email_preferences": {"low_balance": False, "welcome": False}})  # fmt: skip
    assert changed.status == 200, changed.raw
    expected = ALL_ON | {"low_balance": False, "welcome": False}
    assert changed.body["data"]["account"]["email_preferences"] == expected
    again = call("PATCH", "/v1/account", key.secret, {"email_preferences": {"welcome": True}})
    expected["welcome"] = True
    assert again.body["data"]["account"]["email_preferences"] == expected
    audit = conn.execute(
        """SELECT before, after FROM audit_log WHERE action = 'account.update'
              AND target_id = %s ORDER BY id""",
        (changed.body["data"]["account"]["id"],),
    ).fetchall()
    assert audit[-1] == (
        {"email_preferences": {"low_balance": False, "welcome": False}},
        {"email_preferences": {"low_balance": False, "welcome": True}},
    )


@pytest.mark.parametrize(
    ("preferences", "param"),
    [
        ({"payment_received": False}, "email_preferences.payment_received"),
        ({"newsletter": False}, "email_preferences.newsletter"),
        ({"low_balance": "no"}, "email_preferences.low_balance"),
        ({}, "email_preferences"),
        (None, "email_preferences"),
        (["low_balance"], "email_preferences"),
    ],
    ids=["essential", "unknown", "not-bool", "empty", "null", "list"],
)
def test_bad_preferences_are_400_naming_the_field(
    preferences: Any, param: str, conn: psycopg.Connection
) -> None:
    key = new_key(new_owner())
    reply = call("PATCH", "/v1/account", key.secret, {"email_preferences": preferences})
    assert reply.status == 400, reply.raw
    assert reply.body["error"]["param"] == param
    assert reply.body["error"]["type"] == "invalid_request_error"
    shown = call("GET", "/v1/account", key.secret).body["data"]["account"]
    assert shown["email_preferences"] == ALL_ON


def test_a_member_cannot_change_the_accounts_preferences() -> None:
    owner = new_owner()
    member = member_key(owner, "member")
    reply = call("PATCH", "/v1/account", member.secret, {"email_preferences": {"welcome": False}})
    assert reply.status == 403, reply.raw
    owner_key = new_key(owner)
    shown = call("GET", "/v1/account", owner_key.secret).body["data"]["account"]
    assert shown["email_preferences"] == ALL_ON


def test_another_accounts_preferences_are_out_of_reach(conn: psycopg.Connection) -> None:
    mine, theirs = new_key(new_owner()), new_owner()
    call("PATCH", "/v1/account", mine.secret, {"email_preferences": {"low_balance": False}},
         headers={"X-Gatewayz-Account": theirs.account_id})  # fmt: skip
    untouched = conn.execute(
        "SELECT email_preferences FROM accounts WHERE id = %s", (theirs.account_id,)
    ).fetchone()
    assert untouched == ({},)


def test_a_turned_off_notice_is_not_queued_an_essential_one_always_is(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    key = new_key(owner)
    call("PATCH", "/v1/account", key.secret, {"email_preferences": {"low_balance": False}})
    with db.transaction() as cur:
        queued = {
            template: outbox.queue(
                cur,
                account_id=owner.account_id,
                template=template,
                subject="s",
                payload={},
                dedupe_key=f"{template}:{uuid.uuid4()}",
            )
            for template in ("low_balance", "spend_alert", "payment_received")
        }
    assert queued == {"low_balance": False, "spend_alert": True, "payment_received": True}
