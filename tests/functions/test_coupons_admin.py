"""`/admin/coupons` through the coupons function's handler: operators create, list,
read, change and deactivate coupons and read their analytics, each change audited;
anyone else gets 403."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gatewayz.identity import keys
from tests.conftest import reset_caches
from tests.factories import new_key, new_owner
from tests.functions.coupons_api import call, create, new_code, redeem
from tests.functions.operators import operator_key

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def admin() -> str:
    return operator_key()[1].secret


def audit_rows(conn: psycopg.Connection, coupon_id: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT action, actor_kind, before, after FROM audit_log
            WHERE target_type = 'coupon' AND target_id = %s ORDER BY id""",
        (coupon_id,),
    ).fetchall()


def test_create_read_change_deactivate_with_audit(admin: str, conn: psycopg.Connection) -> None:
    code = new_code()
    created = call("POST", "/admin/coupons", admin, {
        "code": code, "kind": "credit", "amount": "12.50", "description": "Welcome",
        "max_redemptions": 100, "valid_until": "2999-01-01T00:00:00Z"})  # fmt: skip
    assert created.status == 201, created.raw
    coupon = created.body["data"]
    assert coupon["code"] == code.upper()
    assert (coupon["kind"], coupon["amount"], coupon["percent_off"]) == ("credit", 12.5, None)
    assert (coupon["max_redemptions"], coupon["max_per_user"], coupon["is_active"]) == (
        100, 1, True,
    )  # fmt: skip
    assert coupon["valid_until"].startswith("2999-01-01")
    got = call("GET", f"/admin/coupons/{coupon['id']}", admin)
    assert (got.status, got.body["data"]) == (200, coupon)
    change = {"description": "Welcome back", "max_per_user": 3, "valid_until": None}
    changed = call("PATCH", f"/admin/coupons/{coupon['id']}", admin, change)
    assert changed.status == 200, changed.raw
    after = changed.body["data"]
    assert (after["description"], after["max_per_user"], after["valid_until"]) == (
        "Welcome back", 3, None,
    )  # fmt: skip
    gone = call("DELETE", f"/admin/coupons/{coupon['id']}", admin)
    assert (gone.status, gone.body["data"]["is_active"]) == (200, False)
    rows = audit_rows(conn, coupon["id"])
    assert [(action, kind) for action, kind, _, _ in rows] == [
        ("coupon.create", "key"), ("coupon.update", "key"), ("coupon.update", "key"),
    ]  # fmt: skip
    assert rows[1][2]["max_per_user"] == 1
    assert rows[1][3]["max_per_user"] == 3
    assert (rows[2][2]["is_active"], rows[2][3]["is_active"]) == (True, False)
    # A change that changes nothing writes nothing.
    assert call("DELETE", f"/admin/coupons/{coupon['id']}", admin).status == 200
    assert len(audit_rows(conn, coupon["id"])) == 3


def test_codes_are_unique_whatever_their_case(admin: str) -> None:
    coupon = create(admin)
    again = call("POST", "/admin/coupons", admin,
                 {"code": coupon["code"].lower(), "kind": "credit", "amount": 1})  # fmt: skip
    assert (again.status, again.code) == (409, "coupon_exists"), again.raw


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"kind": "credit", "amount": 1}, "code"),
        ({"code": "ab", "kind": "credit", "amount": 1}, "code"),
        ({"code": "bad code!", "kind": "credit", "amount": 1}, "code"),
        ({"code": "OK-CODE", "kind": "gift", "amount": 1}, "kind"),
        ({"code": "OK-CODE", "kind": "credit"}, "amount"),
        ({"code": "OK-CODE", "kind": "credit", "amount": 0}, "amount"),
        ({"code": "OK-CODE", "kind": "credit", "amount": 1e9}, "amount"),
        ({"code": "OK-CODE", "kind": "credit", "amount": 500.01}, "amount"),  # the setting's cap
        ({"code": "OK-CODE", "kind": "credit", "amount": 1, "percent_off": 5}, "percent_off"),
        ({"code": "OK-CODE", "kind": "percent"}, "percent_off"),
        ({"code": "OK-CODE", "kind": "percent", "percent_off": 101}, "percent_off"),
        ({"code": "OK-CODE", "kind": "percent", "percent_off": 2.5}, "percent_off"),
        ({"code": "OK-CODE", "kind": "percent", "percent_off": 5, "amount": 1}, "amount"),
        (
            {"code": "OK-CODE", "kind": "credit", "amount": 1, "max_redemptions": 0},
            "max_redemptions",
        ),
        ({"code": "OK-CODE", "kind": "credit", "amount": 1, "max_per_user": None}, "max_per_user"),
        (
            {"code": "OK-CODE", "kind": "credit", "amount": 1, "valid_from": "tomorrow"},
            "valid_from",
        ),
        (
            {
                "code": "OK-CODE",
                "kind": "credit",
                "amount": 1,
                "valid_from": "2030-01-02",
                "valid_until": "2030-01-01",
            },
            "valid_until",
        ),
        ({"code": "OK-CODE", "kind": "credit", "amount": 1, "user_id": "nobody"}, "user_id"),
        (
            {
                "code": "OK-CODE",
                "kind": "credit",
                "amount": 1,
                "user_id": "00000000-0000-0000-0000-000000000000",
            },
            "user_id",
        ),
        ({"code": "OK-CODE", "kind": "credit", "amount": 1, "email": "not-an-email"}, "email"),
        ({"code": "OK-CODE", "kind": "credit", "amount": 1, "is_active": "yes"}, "is_active"),
        ({"code": "OK-CODE", "kind": "credit", "amount": 1, "colour": "red"}, "colour"),
        # PostgreSQL text cannot hold NUL; timestamptz cannot go below year 1 or past 9999
        # once the offset is applied.
        (
            {"code": "OK-CODE", "kind": "credit", "amount": 1, "description": "a\u0000b"},
            "description",
        ),
        ({"code": "OK-CODE", "kind": "credit", "amount": 1, "email": "a\u0000b@x.com"}, "email"),
        (
            {
                "code": "OK-CODE",
                "kind": "credit",
                "amount": 1,
                "valid_from": "0001-01-01T00:00:00+14:00",
            },
            "valid_from",
        ),
        (
            {
                "code": "OK-CODE",
                "kind": "credit",
                "amount": 1,
                "valid_until": "9999-12-31T23:59:59-14:00",
            },
            "valid_until",
        ),
    ],
)
def test_bad_coupons_are_400s(admin: str, body: dict[str, Any], param: str) -> None:
    refused = call("POST", "/admin/coupons", admin, body)
    assert (refused.status, refused.body["error"]["param"]) == (400, param), refused.raw


def test_the_credit_cap_is_a_setting(admin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert create(admin, amount=500)["amount"] == 500
    monkeypatch.setenv("COUPON_MAX_CREDIT_USD", "20")
    reset_caches()
    try:
        body = {"code": new_code(), "kind": "credit", "amount": 21}
        refused = call("POST", "/admin/coupons", admin, body)
        assert (refused.status, refused.body["error"]["param"]) == (400, "amount")
        assert "COUPON_MAX_CREDIT_USD" in refused.body["error"]["message"]
        assert create(admin, amount=20)["amount"] == 20
    finally:
        monkeypatch.undo()
        reset_caches()


def test_fixed_fields_cannot_change_and_limits_not_below_use(admin: str) -> None:
    coupon = create(admin, max_redemptions=5)
    for _ in range(2):
        assert redeem(new_key(new_owner()).secret, coupon["code"]).status == 201
    path = f"/admin/coupons/{coupon['id']}"
    for body, param in [({"code": "OTHER"}, "code"), ({"amount": 100}, "amount"),
                        ({"kind": "percent"}, "kind"), ({"max_redemptions": 1}, "max_redemptions"),
                        ({"valid_from": "2999-01-01T00:00:00Z", "valid_until": "2998-01-01"},
                         "valid_until")]:  # fmt: skip
        refused = call("PATCH", path, admin, body)
        assert (refused.status, refused.body["error"]["param"]) == (400, param), refused.raw
    for body, param in [({"description": "\u0000"}, "description"),
                        ({"valid_until": "9999-12-31T23:59:59-14:00"}, "valid_until")]:  # fmt: skip
        refused = call("PATCH", path, admin, body)
        assert (refused.status, refused.body["error"]["param"]) == (400, param), refused.raw
    assert call("PATCH", path, admin, {"max_redemptions": 2}).status == 200
    assert call("PATCH", path, admin, "[]").status == 400
    assert call("GET", path, admin).body["data"]["amount"] == 5


def test_unknown_ids_are_404(admin: str) -> None:
    for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/analytics")]:
        for coupon_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
            body = {"description": "x"} if method == "PATCH" else None
            found = call(method, f"/admin/coupons/{coupon_id}{suffix}", admin, body)
            assert (found.status, found.code) == (404, "not_found"), found.raw


def test_list_filters_and_pages(admin: str) -> None:
    made = [create(admin, is_active=index != 1) for index in range(3)]
    first = call("GET", "/admin/coupons", admin, query={"limit": "2"})
    assert first.status == 200, first.raw
    assert [c["id"] for c in first.body["data"]] == [made[2]["id"], made[1]["id"]]
    rest = call("GET", "/admin/coupons", admin,
                query={"limit": "2", "cursor": first.body["next_cursor"]})  # fmt: skip
    assert rest.body["data"][0]["id"] == made[0]["id"]
    inactive = call("GET", "/admin/coupons", admin, query={"active": "false"})
    assert made[1]["id"] in [c["id"] for c in inactive.body["data"]]
    assert all(not c["is_active"] for c in inactive.body["data"])
    bad = call("GET", "/admin/coupons", admin, query={"active": "maybe"})
    assert (bad.status, bad.body["error"]["param"]) == (400, "active")


def test_analytics_count_redemptions_credit_and_accounts(admin: str) -> None:
    coupon = create(admin, amount=2.5, max_per_user=2)
    owner = new_owner()
    key = new_key(owner)
    assert redeem(key.secret, coupon["code"]).status == 201
    assert redeem(key.secret, coupon["code"]).status == 201
    assert redeem(new_key(new_owner()).secret, coupon["code"]).status == 201
    stats = call("GET", f"/admin/coupons/{coupon['id']}/analytics", admin)
    assert stats.status == 200, stats.raw
    data = stats.body["data"]
    assert (data["redemptions"], data["unique_accounts"], data["unique_users"]) == (3, 2, 2)
    assert (data["credit_granted"], data["discount_given"]) == (7.5, 0)
    assert data["first_redeemed_at"] <= data["last_redeemed_at"]
    empty = call("GET", f"/admin/coupons/{create(admin)['id']}/analytics", admin).body["data"]
    assert (empty["redemptions"], empty["credit_granted"], empty["last_redeemed_at"]) == (
        0, 0, None,
    )  # fmt: skip


def test_only_operators_with_the_admin_scope(admin: str) -> None:
    coupon = create(admin)
    user = new_owner()
    everything = new_key(user, scopes=(*keys.DEFAULT_SCOPES, "admin"))  # not an operator
    operator, _ = operator_key()
    without_scope = new_key(operator)  # an operator's key lacking `admin`
    for secret in (everything.secret, without_scope.secret):
        for method, path, body in [
            ("GET", "/admin/coupons", None),
            ("POST", "/admin/coupons", {"code": new_code(), "kind": "credit", "amount": 1}),
            ("GET", f"/admin/coupons/{coupon['id']}", None),
            ("PATCH", f"/admin/coupons/{coupon['id']}", {"is_active": False}),
            ("DELETE", f"/admin/coupons/{coupon['id']}", None),
            ("GET", f"/admin/coupons/{coupon['id']}/analytics", None),
        ]:
            denied = call(method, path, secret, body)
            assert denied.status == 403, (method, path, denied.raw)
    assert call("GET", f"/admin/coupons/{coupon['id']}", admin).body["data"]["is_active"]
    assert call("GET", "/admin/coupons").status == 401
