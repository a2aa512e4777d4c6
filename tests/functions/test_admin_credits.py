"""`POST /admin/credits` through the keys function's Mangum handler: one ledger entry per
grant or debit with its audit row, exact USD to nanos, never below zero, and idempotent
replays with `Idempotency-Key`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from gatewayz.billing import money
from tests import ledger
from tests.factories import fund, new_hold, new_owner
from tests.functions.keys_api import call
from tests.functions.operators import operator_key

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def entries(conn: psycopg.Connection, account_id: str) -> list[tuple[str, int, str]]:
    return conn.execute(
        "SELECT kind, amount_nanos, description FROM credit_transactions"
        " WHERE account_id = %s ORDER BY id",
        (account_id,),
    ).fetchall()


def balance(conn: psycopg.Connection, account_id: str) -> int:
    row = conn.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,))
    found = row.fetchone()
    assert found is not None
    return int(found[0])


def test_a_grant_and_a_debit_are_one_ledger_entry_each_with_an_audit_row(
    conn: psycopg.Connection,
) -> None:
    operator, admin = operator_key()
    account = new_owner().account_id
    grant = call("POST", "/admin/credits", admin.secret,
                 {"account_id": account, "amount": 12.345678901, "reason": "goodwill"})  # fmt: skip
    assert grant.status == 201, grant.raw
    data = grant.body["data"]
    assert (data["kind"], data["reason"]) == ("admin_grant", "goodwill")
    assert money.usd_to_nanos(str(data["balance_after"])) == 12_345_678_901
    new_hold(account, 345_678_901)  # a request in flight: the invariant counts its hold
    debit = call("POST", "/admin/credits", admin.secret,
                 {"account_id": account, "amount": "-2.5", "reason": "correction"})  # fmt: skip
    assert debit.status == 201, debit.raw
    assert entries(conn, account) == [
        ("admin_grant", 12_345_678_901, "goodwill"),
        ("admin_debit", -2_500_000_000, "correction"),
    ]
    assert balance(conn, account) == 9_500_000_000
    assert ledger.invariant_holds(conn, account)
    audited = conn.execute(
        "SELECT action, actor_user_id::text, after->>'reason' FROM audit_log"
        " WHERE account_id = %s AND action LIKE 'credits.%%' ORDER BY id",
        (account,),
    ).fetchall()
    assert audited == [
        ("credits.admin_grant", operator.user_id, "goodwill"),
        ("credits.admin_debit", operator.user_id, "correction"),
    ]


def test_a_debit_never_takes_the_balance_below_zero(conn: psycopg.Connection) -> None:
    _, admin = operator_key()
    account = new_owner().account_id
    fund(account, 1_000_000_000)
    too_much = {"account_id": account, "amount": -1.000000001, "reason": "too much"}
    refused = call("POST", "/admin/credits", admin.secret, too_much)
    assert (refused.status, refused.body["error"]["param"]) == (400, "amount")
    assert balance(conn, account) == 1_000_000_000
    assert len(entries(conn, account)) == 1
    whole = call("POST", "/admin/credits", admin.secret,
                 {"account_id": account, "amount": -1, "reason": "all of it"})  # fmt: skip
    assert whole.status == 201
    assert whole.body["data"]["balance_after"] == 0
    assert ledger.invariant_holds(conn, account)


def test_a_replay_with_the_same_key_answers_the_first_entry_and_posts_nothing(
    conn: psycopg.Connection,
) -> None:
    _, admin = operator_key()
    account = new_owner().account_id
    body = {"account_id": account, "amount": 3, "reason": "refund of an outage"}
    headers = {"Idempotency-Key": f"ticket-{uuid.uuid4()}"}
    first = call("POST", "/admin/credits", admin.secret, body, headers=headers)
    again = call("POST", "/admin/credits", admin.secret, body, headers=headers)
    assert first.status == again.status == 201
    assert again.body == first.body
    assert len(entries(conn, account)) == 1
    for changed in ({"amount": 4}, {"reason": "another"}, {"account_id": new_owner().account_id}):
        conflict = call("POST", "/admin/credits", admin.secret, body | changed, headers=headers)
        assert (conflict.status, conflict.code) == (409, "idempotency_conflict"), conflict.raw
    assert len(entries(conn, account)) == 1
    # Without the header, each request is its own entry.
    call("POST", "/admin/credits", admin.secret, body)
    assert len(entries(conn, account)) == 2
    assert ledger.invariant_holds(conn, account)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": 1e-10}, "amount"),
        ({"amount": 1e12}, "amount"),
        ({"reason": " "}, "reason"),
        ({"reason": None}, "reason"),
        ({"account_id": "acct_1"}, "account_id"),
    ],
)
def test_bad_fields_are_400s_naming_them(change: dict[str, object], param: str) -> None:
    _, admin = operator_key()
    body = {"account_id": new_owner().account_id, "amount": 1, "reason": "r"} | change
    refused = call("POST", "/admin/credits", admin.secret, body)
    assert (refused.status, refused.body["error"]["param"]) == (400, param), refused.raw


def test_an_unknown_account_is_a_404() -> None:
    _, admin = operator_key()
    body = {"account_id": str(uuid.uuid4()), "amount": 1, "reason": "r"}
    missing = call("POST", "/admin/credits", admin.secret, body)
    assert (missing.status, missing.code) == (404, "not_found")
