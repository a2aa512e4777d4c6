"""`GET` and `PATCH /v1/billing/settings` through the billing function's handler: the
account's spending limit, spend alerts, low-balance alert and auto top-up; owners and
admins change them, every change audited, a changed threshold armed again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.factories import new_key, new_owner
from tests.functions.billing_api import call
from tests.functions.keys_api import member_key

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")
PATH = "/v1/billing/settings"


def columns(conn: psycopg.Connection, account_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        """SELECT monthly_spend_limit_nanos, spend_alert_thresholds_nanos,
                  low_balance_threshold_nanos, low_balance_notified_at IS NOT NULL,
                  auto_topup_threshold_nanos, auto_topup_amount_cents, auto_topup_armed
             FROM accounts WHERE id = %s""",
        (account_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_settings_start_empty_and_change_exactly(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    got = call("GET", PATH, key.secret)
    assert got.status == 200, got.raw
    assert got.body["data"] | {"month_started_at": None} == {
        "object": "billing_settings", "monthly_spend_limit": None, "month_spent": 0,
        "month_started_at": None, "spend_alerts": [], "low_balance_threshold": None,
        "auto_top_up": None, "card_on_file": False,
    }  # fmt: skip
    assert got.body["data"]["month_started_at"][8:19] == "01T00:00:00"
    body = {"monthly_spend_limit": "50.000000001", "spend_alerts": [40, 10.5, 25, 10.5],
            "low_balance_threshold": 2,
            "auto_top_up": {"threshold": 5, "amount": "20.50"}}  # fmt: skip
    changed = call("PATCH", PATH, key.secret, body)
    assert changed.status == 200, changed.raw
    data = changed.body["data"]
    assert (data["monthly_spend_limit"], data["spend_alerts"]) == (50.000000001, [10.5, 25, 40])
    assert data["auto_top_up"] == {"threshold": 5, "amount": 20.5}
    assert columns(conn, owner.account_id) == (
        50_000_000_001, [10_500_000_000, 25_000_000_000, 40_000_000_000], 2_000_000_000, False,
        5_000_000_000, 2050, True)  # fmt: skip
    assert call("GET", PATH, key.secret).body["data"] == data
    # null turns each off; a field left out stays.
    off = call("PATCH", PATH, key.secret, {"auto_top_up": None, "spend_alerts": None})
    assert (off.body["data"]["auto_top_up"], off.body["data"]["spend_alerts"]) == (None, [])
    assert off.body["data"]["monthly_spend_limit"] == 50.000000001


def test_a_changed_threshold_is_armed_again(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    call("PATCH", PATH, key.secret, {"low_balance_threshold": 3,
                                     "auto_top_up": {"threshold": 1, "amount": 10}})  # fmt: skip
    # The jobs fired: the low-balance notice was sent and the top-up used its crossing.
    conn.execute("UPDATE accounts SET low_balance_notified_at = now(), auto_topup_armed = false"
                 " WHERE id = %s", (owner.account_id,))  # fmt: skip
    call("PATCH", PATH, key.secret, {"monthly_spend_limit": 9})
    assert columns(conn, owner.account_id)[3::3] == (True, False)  # untouched
    call("PATCH", PATH, key.secret, {"low_balance_threshold": 4,
                                     "auto_top_up": {"threshold": 2, "amount": 10}})  # fmt: skip
    assert columns(conn, owner.account_id)[3::3] == (False, True)


def test_the_card_on_file_is_reported(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    conn.execute("UPDATE accounts SET stripe_payment_method_id = 'pm_card' WHERE id = %s",
                 (owner.account_id,))  # fmt: skip
    assert call("GET", PATH, key.secret).body["data"]["card_on_file"] is True


def test_every_change_is_audited_with_before_and_after(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    call("PATCH", PATH, key.secret, {"monthly_spend_limit": 12})
    call("PATCH", PATH, key.secret, {"monthly_spend_limit": 12})  # no change, no row
    call("PATCH", PATH, key.secret, {"monthly_spend_limit": None, "spend_alerts": [3]})
    rows = conn.execute(
        "SELECT action, actor_key_id::text, before, after FROM audit_log"
        " WHERE account_id = %s AND target_type = 'account' ORDER BY id",
        (owner.account_id,),
    ).fetchall()
    assert rows == [
        ("billing.settings.update", key.id, {"monthly_spend_limit": None},
         {"monthly_spend_limit": 12}),
        ("billing.settings.update", key.id, {"monthly_spend_limit": 12, "spend_alerts": []},
         {"monthly_spend_limit": None, "spend_alerts": [3]}),
    ]  # fmt: skip


def test_only_owners_and_admins_with_billing_write_change_settings(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    member = member_key(owner, "member")
    refused = call("PATCH", PATH, member.secret, {"monthly_spend_limit": 1})
    assert (refused.status, refused.code) == (403, "role_denied")
    assert call("GET", PATH, member.secret).status == 200  # reading is for every member
    read_only = new_key(owner, scopes=("billing:read",))
    refused = call("PATCH", PATH, read_only.secret, {"monthly_spend_limit": 1})
    assert (refused.status, refused.code) == (403, "scope_denied")
    admin = member_key(owner, "admin")
    assert call("PATCH", PATH, admin.secret, {"monthly_spend_limit": 1}).status == 200
    # Another account's settings are never touched: a key acts in its own account.
    other = new_owner()
    call("PATCH", PATH, new_key(other).secret, {"monthly_spend_limit": 77},
         headers={"X-Gatewayz-Account": owner.account_id})  # fmt: skip
    assert columns(conn, owner.account_id)[0] == 1_000_000_000
    assert columns(conn, other.account_id)[0] == 77_000_000_000


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"monthly_spend_limit": 0}, "monthly_spend_limit"),
        ({"monthly_spend_limit": -5}, "monthly_spend_limit"),
        ({"monthly_spend_limit": "ten"}, "monthly_spend_limit"),
        ({"monthly_spend_limit": True}, "monthly_spend_limit"),
        ({"monthly_spend_limit": 0.0000000001}, "monthly_spend_limit"),
        ({"spend_alerts": [1, 2, 3, 4, 5, 6]}, "spend_alerts"),
        ({"spend_alerts": 5}, "spend_alerts"),
        ({"spend_alerts": [0]}, "spend_alerts"),
        ({"low_balance_threshold": -1}, "low_balance_threshold"),
        ({"auto_top_up": {"threshold": 5}}, "auto_top_up"),
        ({"auto_top_up": {"threshold": 5, "amount": 10, "x": 1}}, "auto_top_up"),
        ({"auto_top_up": {"threshold": 5, "amount": 4.99}}, "auto_top_up.amount"),
        ({"auto_top_up": {"threshold": 5, "amount": 1000.01}}, "auto_top_up.amount"),
        ({"auto_top_up": {"threshold": 5, "amount": 10.001}}, "auto_top_up.amount"),
        ({"auto_top_up": {"threshold": -5, "amount": 10}}, "auto_top_up.threshold"),
        ({"color": "blue"}, "color"),
    ],
)
def test_bad_settings_are_400s_naming_the_field(
    conn: psycopg.Connection, body: dict[str, Any], param: str
) -> None:
    owner = new_owner()
    refused = call("PATCH", PATH, new_key(owner).secret, body)
    assert (refused.status, refused.body["error"]["param"]) == (400, param), refused.raw
    assert columns(conn, owner.account_id)[0] is None


@pytest.mark.parametrize("raw", ["[]", "{}", "null", "not json", ""])
def test_a_body_that_is_not_an_object_of_settings_is_a_400(raw: str) -> None:
    refused = call("PATCH", PATH, new_key(new_owner()).secret, raw)
    assert refused.status == 400, refused.raw
    assert refused.code in ("invalid_request_error", "invalid_json")
