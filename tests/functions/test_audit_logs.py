"""`GET /v1/audit-logs` and `GET /admin/audit-logs` through the keys function's Mangum
handler: an account's owner and admins read its rows (never another account's), newest
first, filtered and paged; operators read every account's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db, pagination
from gatewayz.identity import audit
from tests.factories import new_key, new_owner
from tests.fakes.supabase_auth import project
from tests.functions.keys_api import CLIENT_IP, call, member_key
from tests.functions.operators import operator_key
from tests.functions.test_account import Person

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gatewayz.identity.accounts import Owner
    from tests.fakes.supabase_auth import FakeAuth

pytestmark = pytest.mark.usefixtures("database_url")


def busy_account() -> tuple[Owner, str, list[str]]:
    """An account whose owner made three keys through the API (three `key.create` rows)
    and renamed one (`key.update`): the owner, their key's secret, the new key ids."""
    owner = new_owner()
    secret = new_key(owner).secret
    made = [call("POST", "/v1/keys", secret, {"name": f"k{i}"}) for i in range(3)]
    ids = [m.body["data"]["id"] for m in made]
    assert call("PATCH", f"/v1/keys/{ids[0]}", secret, {"name": "renamed"}).status == 200
    return owner, secret, ids


def logs(secret: str, path: str = "/v1/audit-logs", **query: str) -> Any:
    reply = call("GET", path, secret, query=query or None)
    assert reply.status == 200, reply.raw
    return reply.body


def test_the_owner_reads_the_accounts_rows_newest_first_and_only_those() -> None:
    owner, secret, ids = busy_account()
    busy_account()  # another account, as busy
    rows = logs(secret)["data"]
    assert [(r["action"], r["target"]["id"]) for r in rows] == [
        ("key.update", ids[0]), ("key.create", ids[2]), ("key.create", ids[1]),
        ("key.create", ids[0]),
    ]  # fmt: skip
    assert {r["account_id"] for r in rows} == {owner.account_id}
    first = rows[0]
    assert first["actor"]["kind"] == "key"
    assert first["actor"]["user_id"] == owner.user_id
    assert first["before"]["name"] == "k0"
    assert first["after"]["name"] == "renamed"
    assert first["ip"] == CLIENT_IP
    assert first["request_id"]
    assert datetime.fromisoformat(first["created_at"]).tzinfo is not None


def test_pages_follow_each_other_without_repeats() -> None:
    _, secret, _ = busy_account()
    every = [r["id"] for r in logs(secret)["data"]]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = logs(secret, limit="3", **({"cursor": cursor} if cursor else {}))
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == every
    assert len(every) == 4


def test_filters_narrow_the_rows() -> None:
    owner, secret, ids = busy_account()
    own_key = logs(secret)["data"][0]["actor"]["key_id"]
    with db.transaction() as cur:
        audit.record(cur, action="account.suspend", target_type="account",
                     target_id=owner.account_id, account_id=owner.account_id,
                     actor_kind="system")  # fmt: skip

    def actions(**query: str) -> list[tuple[str, str | None]]:
        return [(r["action"], r["target"]["id"]) for r in logs(secret, **query)["data"]]

    assert actions(action="key.update") == [("key.update", ids[0])]
    assert actions(target=f"api_key:{ids[1]}") == [("key.create", ids[1])]
    assert len(actions(target="api_key")) == 4
    assert actions(actor="system") == [("account.suspend", owner.account_id)]
    assert len(actions(actor=own_key)) == 4
    assert len(actions(actor=owner.user_id)) == 4
    assert actions(actor=str(uuid.uuid4())) == []
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert actions(since=later) == []
    assert len(actions(until=later)) == 5
    assert actions(until="2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("actor", "someone"),
        ("target", ":x"),
        ("target", "api_key:"),
        ("since", "yesterday"),
        ("since", "2026-01-01T00:00:00"),  # no offset
        ("until", "2026-01-01"),
        ("action", " "),
        ("limit", "101"),
        ("cursor", "garbage"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(name: str, value: str) -> None:
    owner = new_owner()
    refused = call("GET", "/v1/audit-logs", new_key(owner).secret, query={name: value})
    assert (refused.status, refused.body["error"]["param"]) == (400, name), refused.raw


def test_members_and_keys_without_keys_read_are_refused() -> None:
    owner, _, _ = busy_account()
    member = call("GET", "/v1/audit-logs", member_key(owner, "member").secret)
    assert (member.status, member.code) == (403, "role_denied")
    admin = call("GET", "/v1/audit-logs", member_key(owner, "admin").secret)
    assert admin.status == 200
    assert len(admin.body["data"]) == 4
    chat_only = call("GET", "/v1/audit-logs", new_key(owner, scopes=("chat",)).secret)
    assert (chat_only.status, chat_only.code) == (403, "scope_denied")
    assert call("GET", "/v1/audit-logs").status == 401


def test_an_account_filter_on_the_account_route_shows_nothing_of_another() -> None:
    other, _, _ = busy_account()
    _, secret, _ = busy_account()
    rows = logs(secret, account=other.account_id)["data"]
    assert rows
    assert {r["account_id"] for r in rows} != {other.account_id}


def test_operators_read_every_account_and_filter_by_account() -> None:
    first, _, _ = busy_account()
    second, _, _ = busy_account()
    _, admin = operator_key()
    path = "/admin/audit-logs"
    recent = logs(admin.secret, path, limit="100")["data"]
    assert {first.account_id, second.account_id} <= {r["account_id"] for r in recent}
    only = logs(admin.secret, path, account=first.account_id)["data"]
    assert len(only) == 4
    assert {r["account_id"] for r in only} == {first.account_id}
    bad = call("GET", path, admin.secret, query={"account": "x"})
    assert (bad.status, bad.body["error"]["param"]) == (400, "account")
    owner_key = new_key(first).secret
    assert call("GET", path, owner_key).status == 403


@pytest.fixture
def supabase(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAuth]:
    with project(monkeypatch) as served:
        yield served


def test_a_session_of_the_owner_reads_its_sign_up_rows(supabase: FakeAuth) -> None:
    person = Person(supabase)
    signed_up = call("POST", "/v1/account", headers=person.headers())
    assert signed_up.status == 201, signed_up.raw
    rows = call("GET", "/v1/audit-logs", headers=person.headers())
    assert rows.status == 200, rows.raw
    assert [r["action"] for r in rows.body["data"]] == [
        "account.trial_start", "key.create", "account.create",
    ]  # fmt: skip
    assert {r["actor"]["kind"] for r in rows.body["data"]} == {"user"}


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("/v1/audit-logs", ["2026-01-01T00:00:00+00:00", "x"]),
        ("/v1/audit-logs", ["not a time", 5]),
        ("/admin/users", ["2026-01-01T00:00:00+00:00", "x"]),
        ("/admin/users", ["never", str(uuid.uuid4())]),
    ],
)
def test_a_forged_cursor_is_a_400(path: str, values: list[object]) -> None:
    _, admin = operator_key()
    forged = pagination.encode(*values)
    refused = call("GET", path, admin.secret, query={"cursor": forged})
    assert (refused.status, refused.body["error"]["param"]) == (400, "cursor"), refused.raw
