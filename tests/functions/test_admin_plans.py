"""`/admin/plans` through the billing function's handler: operators list, create, read
and change plans, each change audited; a plan's lowered limits apply on the very next
request of its accounts (through the real chat handler)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz.identity import keys
from tests.factories import fund, new_hold, new_key, new_owner
from tests.functions.billing_api import call, chat
from tests.functions.operators import operator_key

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")
LIMITS = {"requests_per_minute": 100, "requests_per_day": 1000, "tokens_per_minute": 1_000_000,
          "concurrent_requests": 5, "max_keys": 5}  # fmt: skip


def new_plan(secret: str, **fields: Any) -> dict[str, Any]:
    body = {"id": f"t-{uuid.uuid4().hex[:8]}", "name": "Test plan", "kind": "payg",
            "limits": LIMITS, **fields}  # fmt: skip
    created = call("POST", "/admin/plans", secret, body)
    assert created.status == 201, created.raw
    data: dict[str, Any] = created.body["data"]
    return data


def auth_version(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute("SELECT auth_version FROM accounts WHERE id = %s", (account_id,))
    found = row.fetchone()
    assert found is not None
    return int(found[0])


def test_a_lowered_limit_applies_on_the_next_request(conn: psycopg.Connection) -> None:
    _, admin = operator_key()
    plan = new_plan(admin.secret)
    owner, elsewhere = new_owner(plan_id=plan["id"]), new_owner()
    key = new_key(owner)
    fund(owner.account_id, 5_000_000_000)
    assert chat(key.secret).status == 200  # its caller (limits) now cached
    new_hold(owner.account_id, 1_000)  # one request in flight
    assert chat(key.secret).status == 200  # 2 in flight fit in 5
    untouched = auth_version(conn, elsewhere.account_id)
    lowered = call("PATCH", f"/admin/plans/{plan['id']}", admin.secret,
                   {"limits": {"concurrent_requests": 1}})  # fmt: skip
    assert lowered.status == 200, lowered.raw
    assert lowered.body["data"]["limits"] == {**LIMITS, "concurrent_requests": 1}
    refused = chat(key.secret)
    assert (refused.status, refused.code) == (429, "rate_limit_exceeded"), refused.raw
    assert refused.body["error"]["metadata"] == {"limit": "concurrent_requests"}
    assert auth_version(conn, elsewhere.account_id) == untouched
    # A change that is not a limit sends no account back to the database.
    version = auth_version(conn, owner.account_id)
    call("PATCH", f"/admin/plans/{plan['id']}", admin.secret, {"name": "Renamed"})
    assert auth_version(conn, owner.account_id) == version


def test_operators_list_create_read_and_change_plans(conn: psycopg.Connection) -> None:
    operator, admin = operator_key()
    plan = new_plan(admin.secret, kind="subscription", monthly_price=19.99,
                    included_credit="19.99", is_public=False,
                    description="  For tests. ")  # fmt: skip
    assert (plan["monthly_price"], plan["included_credit"], plan["purchasable"]) == (
        19.99, 19.99, False)  # fmt: skip
    assert (plan["is_public"], plan["description"], plan["stripe_price_id"]) == (
        False, "For tests.", None)  # fmt: skip
    listed = call("GET", "/admin/plans", admin.secret).body["data"]
    assert plan["id"] in [p["id"] for p in listed]  # hidden plans too
    public = call("GET", "/v1/plans", admin.secret).body["data"]
    assert plan["id"] not in [p["id"] for p in public]
    price = f"price_{uuid.uuid4().hex[:12]}"
    changed = call("PATCH", f"/admin/plans/{plan['id']}", admin.secret,
                   {"stripe_price_id": price, "is_public": True, "sort_order": 9})  # fmt: skip
    assert changed.status == 200, changed.raw
    assert (changed.body["data"]["purchasable"], changed.body["data"]["sort_order"]) == (True, 9)
    assert call("GET", f"/admin/plans/{plan['id']}", admin.secret).body["data"] == (
        changed.body["data"])  # fmt: skip
    row = conn.execute("SELECT monthly_price_cents, included_credit_nanos, stripe_price_id"
                       " FROM plans WHERE id = %s", (plan["id"],)).fetchone()  # fmt: skip
    assert row == (1999, 19_990_000_000, price)
    audited = conn.execute(
        "SELECT action, actor_user_id::text, before->>'stripe_price_id', after->>'stripe_price_id'"
        " FROM audit_log WHERE target_type = 'plan' AND target_id = %s ORDER BY id",
        (plan["id"],),
    ).fetchall()
    assert audited == [("plan.create", operator.user_id, None, None),
                       ("plan.update", operator.user_id, None, price)]  # fmt: skip
    # Another plan may not take the same Stripe price, nor the same id.
    other = new_plan(admin.secret)
    taken = call("PATCH", f"/admin/plans/{other['id']}", admin.secret, {"stripe_price_id": price})
    assert (taken.status, taken.code) == (409, "plan_exists")
    again = call("POST", "/admin/plans", admin.secret,
                 {"id": other["id"], "name": "x", "kind": "payg", "limits": LIMITS})  # fmt: skip
    assert (again.status, again.code) == (409, "plan_exists")


def test_only_operators_manage_plans() -> None:
    owner = new_owner()
    everything = new_key(owner, scopes=keys.DEFAULT_SCOPES)
    with_admin_scope = new_key(owner, scopes=(*keys.DEFAULT_SCOPES, "admin"))
    _, operator = operator_key()
    plan = new_plan(operator.secret)
    for secret in (everything.secret, with_admin_scope.secret):
        for method, path, body in (
            ("GET", "/admin/plans", None),
            ("POST", "/admin/plans", {"id": "x-plan", "name": "x", "kind": "payg",
                                      "limits": LIMITS}),
            ("GET", f"/admin/plans/{plan['id']}", None),
            ("PATCH", f"/admin/plans/{plan['id']}", {"name": "mine"}),
        ):  # fmt: skip
            refused = call(method, path, secret, body)
            assert refused.status == 403, (method, path, refused.raw)
    assert call("GET", "/admin/plans").status == 401
    assert call("GET", f"/admin/plans/{plan['id']}", operator.secret).body["data"]["name"] == (
        "Test plan")  # fmt: skip
    assert call("GET", "/admin/plans/no-such-plan", operator.secret).code == "not_found"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"id": "Bad Id"}, "id"),
        ({"kind": "forever"}, "kind"),
        ({"name": "  "}, "name"),
        ({"limits": {**LIMITS, "requests_per_minute": 0}}, "limits.requests_per_minute"),
        ({"limits": {"requests_per_minute": 5}}, "limits.requests_per_day"),
        ({"limits": {**LIMITS, "burst": 3}}, "limits.burst"),
        ({"kind": "subscription"}, "monthly_price"),
        ({"kind": "trial"}, "trial_days"),
        ({"trial_days": 3}, "trial_days"),
        ({"monthly_price": 1.001}, "monthly_price"),
        ({"included_credit": -1}, "included_credit"),
        ({"stripe_price_id": "prod_123"}, "stripe_price_id"),
        ({"is_public": "yes"}, "is_public"),
        ({"color": "red"}, "color"),
    ],
)
def test_a_bad_plan_is_a_400_naming_the_field(fields: dict[str, Any], param: str) -> None:
    _, admin = operator_key()
    body = {"id": f"t-{uuid.uuid4().hex[:8]}", "name": "Bad", "kind": "payg", "limits": LIMITS,
            **fields}  # fmt: skip
    refused = call("POST", "/admin/plans", admin.secret, body)
    assert (refused.status, refused.body["error"]["param"]) == (400, param), refused.raw


def test_kind_and_id_cannot_change() -> None:
    _, admin = operator_key()
    plan = new_plan(admin.secret)
    for field, value in (("kind", "free"), ("id", "other")):
        refused = call("PATCH", f"/admin/plans/{plan['id']}", admin.secret, {field: value})
        assert (refused.status, refused.body["error"]["param"]) == (400, field)
    trial = new_plan(admin.secret, kind="trial", trial_days=7, included_credit=5)
    assert trial["trial_days"] == 7
    longer = call("PATCH", f"/admin/plans/{trial['id']}", admin.secret, {"trial_days": 14})
    assert longer.body["data"]["trial_days"] == 14
