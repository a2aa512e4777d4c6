"""`POST /v1/coupons/redeem` and `GET /v1/coupons/redemptions` through the coupons
function's handler: a credit coupon grants once, through the ledger; every refusal is a
400 naming `code` with its own error code, and changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gatewayz.billing import money
from tests import ledger
from tests.factories import new_key, new_member, new_owner
from tests.functions.coupons_api import balance, call, counts, coupon_entries, create, redeem
from tests.functions.operators import operator_key

if TYPE_CHECKING:
    import psycopg

    from gatewayz.identity.accounts import Owner

pytestmark = pytest.mark.usefixtures("database_url")
USD = money.NANOS_PER_USD


@pytest.fixture
def admin() -> str:
    return operator_key()[1].secret


def audit_actions(conn: psycopg.Connection, coupon_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT action FROM audit_log WHERE target_type = 'coupon' AND target_id = %s ORDER BY id",
        (coupon_id,),
    )
    return [row[0] for row in rows]


def test_a_credit_coupon_grants_once_through_the_ledger(
    admin: str, conn: psycopg.Connection
) -> None:
    coupon = create(admin, amount=7.25, description="Launch week")
    owner = new_owner()
    key = new_key(owner)
    before = balance(owner.account_id)
    # Codes are case-insensitive: stored upper-case, typed any way.
    done = redeem(key.secret, "  " + coupon["code"].lower() + " ")
    assert done.status == 201, done.raw
    data = done.body["data"]
    assert (data["code"], data["kind"], data["status"], data["amount"]) == (
        coupon["code"], "credit", "granted", 7.25,
    )  # fmt: skip
    assert balance(owner.account_id) == before + 7_250_000_000
    assert coupon_entries(owner.account_id) == [(7_250_000_000, f"coupon_redemption:{data['id']}")]
    again = redeem(key.secret, coupon["code"])
    assert (again.status, again.code) == (400, "coupon_already_redeemed"), again.raw
    assert again.body["error"]["param"] == "code"
    assert balance(owner.account_id) == before + 7_250_000_000
    assert counts(coupon["id"]) == (1, 1)
    assert audit_actions(conn, coupon["id"]) == ["coupon.create", "coupon.redeem"]
    assert ledger.invariant_holds(conn, owner.account_id)


def refused_without_change(secret: str, owner: Owner, code: Any, expected: str) -> None:
    before = balance(owner.account_id)
    refused = redeem(secret, code)
    assert (refused.status, refused.code) == (400, expected), refused.raw
    assert refused.body["error"]["param"] == "code"
    assert refused.body["error"]["type"] == "invalid_request_error"
    assert balance(owner.account_id) == before
    assert coupon_entries(owner.account_id) == []


def test_unknown_inactive_early_and_expired_coupons_are_clear_400s(admin: str) -> None:
    owner = new_owner()
    key = new_key(owner)
    inactive = create(admin, is_active=False)
    early = create(admin, valid_from="2999-01-01T00:00:00Z")
    expired = create(admin, valid_from="2020-01-01T00:00:00Z", valid_until="2021-01-01T00:00:00Z")
    cases = [
        ("NO-SUCH-COUPON", "coupon_not_found"),
        ("x", "coupon_not_found"),  # cannot be a code at all
        (inactive["code"], "coupon_inactive"),
        (early["code"], "coupon_not_yet_valid"),
        (expired["code"], "coupon_expired"),
    ]
    for code, expected in cases:
        refused_without_change(key.secret, owner, code, expected)
    for coupon in (inactive, early, expired):
        assert counts(coupon["id"]) == (0, 0)
    # A coupon deactivated after some redemptions stops there.
    live = create(admin)
    assert redeem(new_key(new_owner()).secret, live["code"]).status == 201
    assert call("DELETE", f"/admin/coupons/{live['id']}", admin).status == 200
    refused_without_change(key.secret, owner, live["code"], "coupon_inactive")


def test_max_per_user_and_overall(admin: str) -> None:
    coupon = create(admin, amount=1, max_per_user=2, max_redemptions=3)
    first, second = new_owner(), new_owner()
    first_key, second_key = new_key(first), new_key(second)
    assert redeem(first_key.secret, coupon["code"]).status == 201
    assert redeem(first_key.secret, coupon["code"]).status == 201
    refused = redeem(first_key.secret, coupon["code"])
    assert refused.code == "coupon_already_redeemed", refused.raw
    assert balance(first.account_id) == 2 * USD
    assert redeem(second_key.secret, coupon["code"]).status == 201
    refused_without_change(
        new_key(new_owner()).secret, new_owner(), coupon["code"], "coupon_exhausted"
    )
    assert counts(coupon["id"]) == (3, 3)
    # Per user, not per account: a team member redeems into the same account.
    team = create(admin, amount=1)
    member = new_member(first, "member")
    assert redeem(first_key.secret, team["code"]).status == 201
    assert redeem(new_key(member).secret, team["code"]).status == 201
    assert balance(first.account_id) == 4 * USD


def test_a_coupon_for_one_user_refuses_everyone_else(admin: str, conn: psycopg.Connection) -> None:
    owner, other = new_owner(), new_owner()
    email = conn.execute("SELECT email FROM users WHERE id = %s", (owner.user_id,)).fetchone()
    assert email is not None
    by_id = create(admin, user_id=owner.user_id)
    by_email = create(admin, email=email[0].upper())
    assert by_email["email"] == email[0].lower()
    other_key = new_key(other)
    refused_without_change(other_key.secret, other, by_id["code"], "coupon_not_for_you")
    refused_without_change(other_key.secret, other, by_email["code"], "coupon_not_for_you")
    key = new_key(owner)
    assert redeem(key.secret, by_id["code"]).status == 201
    assert redeem(key.secret, by_email["code"]).status == 201
    assert [amount for amount, _ in coupon_entries(owner.account_id)] == [5 * USD, 5 * USD]


def test_bad_bodies_and_missing_scope() -> None:
    owner = new_owner()
    key = new_key(owner)
    for body, param in [({}, "code"), ({"code": 12}, "code"), ({"code": "A", "x": 1}, "x")]:
        bad = call("POST", "/v1/coupons/redeem", key.secret, body)
        assert (bad.status, bad.body["error"]["param"]) == (400, param), bad.raw
    assert call("POST", "/v1/coupons/redeem", key.secret, "[1]").status == 400
    assert call("POST", "/v1/coupons/redeem", key.secret, "{").code == "invalid_json"
    no_scope = new_key(owner, scopes=["chat"])
    denied = redeem(no_scope.secret, "ANY-CODE")
    assert (denied.status, denied.code) == (403, "scope_denied")
    assert call("GET", "/v1/coupons/redemptions", no_scope.secret).status == 403
    assert redeem("gw_live_" + "x" * 32, "ANY-CODE").status == 401


def test_redemptions_are_the_accounts_own_paginated(admin: str) -> None:
    owner, other = new_owner(), new_owner()
    key = new_key(owner)
    codes = [create(admin, amount=1)["code"] for _ in range(3)]
    for code in codes:
        assert redeem(key.secret, code).status == 201
    assert redeem(new_key(other).secret, codes[0]).status == 201
    first = call("GET", "/v1/coupons/redemptions", key.secret, query={"limit": "2"})
    assert first.status == 200, first.raw
    assert [row["code"] for row in first.body["data"]] == codes[:0:-1]
    assert first.body["next_cursor"]
    rest = call("GET", "/v1/coupons/redemptions", key.secret,
                query={"limit": "2", "cursor": first.body["next_cursor"]})  # fmt: skip
    assert [row["code"] for row in rest.body["data"]] == codes[:1]
    assert rest.body["next_cursor"] is None
    bad = call("GET", "/v1/coupons/redemptions", key.secret, query={"cursor": "nope"})
    assert (bad.status, bad.body["error"]["param"]) == (400, "cursor")
    theirs = call("GET", "/v1/coupons/redemptions", new_key(other).secret)
    assert [row["code"] for row in theirs.body["data"]] == codes[:1]


def test_one_percent_coupon_attached_at_a_time(admin: str) -> None:
    owner = new_owner()
    key = new_key(owner)
    first = create(admin, kind="percent", percent_off=20)
    second = create(admin, kind="percent", percent_off=30)
    attached = redeem(key.secret, first["code"])
    assert attached.status == 201, attached.raw
    data = attached.body["data"]
    assert (data["kind"], data["status"], data["percent_off"], data["amount"]) == (
        "percent", "attached", 20, None,
    )  # fmt: skip
    refused_without_change(key.secret, owner, second["code"], "coupon_already_attached")
    assert counts(second["id"]) == (0, 0)
    # A credit coupon is still fine meanwhile.
    assert redeem(key.secret, create(admin)["code"]).status == 201
