"""`/admin/users` through the keys function's Mangum handler: operators create, find,
read and change users; anyone else is refused and changes nothing; a suspended user's
keys stop on their next request."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from gatewayz import db, errors
from gatewayz.identity import auth, keys
from gatewayz.ratelimit import get_store, limiter
from tests.factories import new_key, new_owner
from tests.functions.keys_api import call
from tests.functions.operators import make_operator, operator_key

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def fresh_email() -> str:
    return f"made-{uuid.uuid4().hex[:10]}@example.com"


def test_an_operator_creates_a_user_with_an_account_and_a_working_key(
    conn: psycopg.Connection,
) -> None:
    _, admin = operator_key()
    email = fresh_email()
    created = call("POST", "/admin/users", admin.secret, {"email": email})
    assert created.status == 201, created.raw
    user, account = created.body["data"]["user"], created.body["data"]["account"]
    assert user["email"] == email
    assert user["is_admin"] is False
    assert account["status"] == "active"
    assert account["balance"] == 0
    secret = created.body["key"]
    assert secret.startswith("gw_live_")
    # The new key acts as the new user in the new account.
    profile = call("GET", "/v1/account", secret)
    assert profile.status == 200, profile.raw
    assert profile.body["data"]["user"]["id"] == user["id"]
    assert profile.body["data"]["account"]["id"] == account["id"]
    row = conn.execute(
        "SELECT actor_kind, actor_key_id::text, account_id::text FROM audit_log"
        " WHERE action = 'user.create' AND target_id = %s",
        (user["id"],),
    ).fetchone()
    assert row == ("key", admin.id, account["id"])
    # The same address again, in any case, is taken.
    again = call("POST", "/admin/users", admin.secret, {"email": email.upper()})
    assert (again.status, again.code) == (409, "email_in_use")


@pytest.mark.parametrize("body", [{}, {"email": "not-an-address"}, {"email": 7}, [1]])
def test_a_bad_email_is_a_400_naming_it(body: object) -> None:
    _, admin = operator_key()
    refused = call("POST", "/admin/users", admin.secret, body)
    assert refused.status == 400, refused.raw
    if isinstance(body, dict):
        assert refused.body["error"]["param"] == "email"


def test_users_are_searched_by_email_and_paged() -> None:
    _, admin = operator_key()
    tag = uuid.uuid4().hex[:8]
    made = [
        call("POST", "/admin/users", admin.secret, {"email": f"find-{tag}-{i}@example.com"})
        for i in range(3)
    ]
    ids = [m.body["data"]["user"]["id"] for m in made]
    first = call("GET", "/admin/users", admin.secret, query={"q": tag.upper(), "limit": "2"})
    assert first.status == 200, first.raw
    assert [u["id"] for u in first.body["data"]] == ids[::-1][:2]
    cursor = first.body["next_cursor"]
    rest = call("GET", "/admin/users", admin.secret, query={"q": tag, "cursor": cursor})
    assert [u["id"] for u in rest.body["data"]] == ids[:1]
    assert rest.body["next_cursor"] is None
    # `%` and `_` are matched as themselves, not as patterns.
    wild = call("GET", "/admin/users", admin.secret, query={"q": "%"})
    assert wild.status == 200
    assert wild.body["data"] == []
    bad = call("GET", "/admin/users", admin.secret, query={"limit": "0"})
    assert (bad.status, bad.body["error"]["param"]) == (400, "limit")


def test_one_user_is_read_by_id_and_unknown_ids_are_404() -> None:
    _, admin = operator_key()
    other = new_owner()
    found = call("GET", f"/admin/users/{other.user_id}", admin.secret)
    assert found.status == 200, found.raw
    assert found.body["data"]["account"]["id"] == other.account_id
    for missing in (str(uuid.uuid4()), "nope"):
        gone = call("GET", f"/admin/users/{missing}", admin.secret)
        assert (gone.status, gone.code) == (404, "not_found")


def test_a_suspended_users_key_is_refused_on_its_next_request(conn: psycopg.Connection) -> None:
    operator, admin = operator_key()
    user = new_owner()
    key = new_key(user)
    auth.authenticate(key.secret)
    cached = auth.authenticate(key.secret)  # a warm function has the key cached, active
    assert cached.cached
    suspended = call("PATCH", f"/admin/users/{user.user_id}", admin.secret, {"suspended": True})
    assert suspended.status == 200, suspended.raw
    assert suspended.body["data"]["suspended"] is True
    assert suspended.body["data"]["account"]["status"] == "suspended"
    # The next request's rate-limit call brings the announced version: the cache is stale.
    admission = limiter.admit(get_store(), cached, 1)
    with pytest.raises(errors.AccountInactive):
        auth.revalidate(key.secret, cached, admission.version)
    direct = call("GET", "/v1/key", key.secret)
    assert (direct.status, direct.code) == (403, "account_inactive")
    row = conn.execute(
        "SELECT actor_user_id::text, before, after FROM audit_log"
        " WHERE action = 'account.suspend' AND target_id = %s",
        (user.account_id,),
    ).fetchone()
    assert row == (operator.user_id, {"status": "active"}, {"status": "suspended"})
    back = call("PATCH", f"/admin/users/{user.user_id}", admin.secret, {"suspended": False})
    assert back.body["data"]["account"]["status"] == "active"
    assert call("GET", "/v1/key", key.secret).status == 200


def test_an_operator_makes_and_unmakes_operators() -> None:
    _, admin = operator_key()
    other = new_owner()
    other_key = new_key(other, scopes=(*keys.DEFAULT_SCOPES, "admin"))
    assert call("GET", "/admin/users", other_key.secret).status == 403
    made = call("PATCH", f"/admin/users/{other.user_id}", admin.secret, {"is_admin": True})
    assert made.body["data"]["is_admin"] is True
    assert call("GET", "/admin/users", other_key.secret).status == 200
    call("PATCH", f"/admin/users/{other.user_id}", admin.secret, {"is_admin": False})
    assert call("GET", "/admin/users", other_key.secret).status == 403


@pytest.mark.parametrize(
    ("body", "param"),
    [({"suspended": "yes"}, "suspended"), ({"is_admin": 1}, "is_admin"), ({"email": "x"}, "email")],
)
def test_a_bad_change_is_a_400_naming_it_and_changes_nothing(
    conn: psycopg.Connection, body: dict[str, object], param: str
) -> None:
    _, admin = operator_key()
    other = new_owner()
    refused = call("PATCH", f"/admin/users/{other.user_id}", admin.secret, body)
    assert (refused.status, refused.body["error"]["param"]) == (400, param)
    status = conn.execute("SELECT status FROM accounts WHERE id = %s", (other.account_id,))
    assert status.fetchone() == ("active",)


def test_everyone_but_an_operator_is_refused_and_nothing_changes(
    conn: psycopg.Connection,
) -> None:
    plain = new_owner()
    without_admin_scope = new_owner()
    make_operator(without_admin_scope)  # an operator whose key lacks `admin`
    user_keys = [
        new_key(plain),
        new_key(plain, scopes=(*keys.DEFAULT_SCOPES, "admin")),  # not an operator
        new_key(without_admin_scope),
    ]
    target = new_owner()
    before = conn.execute("SELECT count(*) FROM users").fetchone()
    attempts = [
        ("POST", "/admin/users", {"email": fresh_email()}),
        ("GET", "/admin/users", None),
        ("GET", f"/admin/users/{target.user_id}", None),
        ("PATCH", f"/admin/users/{target.user_id}", {"suspended": True}),
        ("POST", "/admin/credits", {"account_id": target.account_id, "amount": 5, "reason": "x"}),
        ("GET", "/admin/audit-logs", None),
    ]
    for key in user_keys:
        for method, path, body in attempts:
            refused = call(method, path, key.secret, body)
            assert refused.status == 403, (method, path, refused.raw)
    assert call("GET", "/admin/users").status == 401
    assert conn.execute("SELECT count(*) FROM users").fetchone() == before
    row = conn.execute(
        "SELECT status, balance_nanos FROM accounts WHERE id = %s", (target.account_id,)
    ).fetchone()
    assert row == ("active", 0)
    db.close()
