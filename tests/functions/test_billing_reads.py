"""`GET /v1/credits`, `/v1/credits/transactions`, `/v1/plans`, `/v1/subscription` and
`/v1/trial` through the billing function's Mangum handler: exact dollars from the
ledger, always the caller's own account, and the scopes each route needs."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz.billing import credits, money
from tests import ledger
from tests.factories import fund, new_hold, new_key, new_owner
from tests.functions.billing_api import call, chat
from tests.functions.keys_api import member_key
from tests.pg import ROOT

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def nanos(usd: Any) -> int:
    return money.usd_to_nanos(str(usd))


def one(conn: psycopg.Connection, query: str, *params: Any) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


def debit(account_id: str, amount_nanos: int, kind: str = "admin_debit") -> None:
    from gatewayz import db

    with db.transaction() as cur:
        credits.post(cur, account_id=account_id, kind=kind, amount_nanos=-amount_nanos,
                     allow_negative=True)  # fmt: skip


def test_credits_add_up_to_the_ledger(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    fund(owner.account_id, 5_000_000_000)
    assert chat(key.secret).status == 200
    new_hold(owner.account_id, 123_456_789)
    debit(owner.account_id, 1_000_000_001)
    got = call("GET", "/v1/credits", key.secret)
    assert got.status == 200, got.raw
    data = got.body["data"]
    used = one(conn, "SELECT cost_nanos FROM usage_records WHERE account_id = %s",
               owner.account_id)  # fmt: skip
    assert used > 0
    assert nanos(data["balance"]) == one(
        conn, "SELECT balance_nanos FROM accounts WHERE id = %s", owner.account_id
    )
    assert nanos(data["held"]) == 123_456_789
    assert nanos(data["total_credits"]) == 5_000_000_000
    assert nanos(data["total_usage"]) == used
    assert nanos(data["total_removed"]) == 1_000_000_001
    assert nanos(data["balance"]) + nanos(data["held"]) == (
        nanos(data["total_credits"]) - nanos(data["total_usage"]) - nanos(data["total_removed"])
    )
    assert (data["currency"], data["monthly_spend_limit"]) == ("usd", None)
    assert nanos(data["month_spent"]) == used  # settling counted it in this month
    assert ledger.invariant_holds(conn, owner.account_id)


def test_each_caller_sees_only_their_own_accounts_credits() -> None:
    rich, poor = new_owner(), new_owner()
    fund(rich.account_id, 7_000_000_000)
    fund(poor.account_id, 2_000_000_000)
    poor_key = new_key(poor)
    # The header names another account: a key always acts in its own.
    headers = {"X-Gatewayz-Account": rich.account_id}
    got = call("GET", "/v1/credits", poor_key.secret, headers=headers)
    assert got.body["data"]["total_credits"] == 2
    # A member of an account reads that account's credits.
    member = member_key(rich, "member")
    assert call("GET", "/v1/credits", member.secret).body["data"]["total_credits"] == 7


def test_reads_need_a_key_with_billing_read() -> None:
    owner = new_owner()
    chat_only = new_key(owner, scopes=("chat",))
    for path in ("/v1/credits", "/v1/credits/transactions", "/v1/usage", "/v1/subscription",
                 "/v1/trial", "/v1/billing/settings"):  # fmt: skip
        assert call("GET", path).code == "invalid_api_key", path
        refused = call("GET", path, chat_only.secret)
        assert (refused.status, refused.code) == (403, "scope_denied"), path
    # Any valid key may read the plans; no key may not.
    assert call("GET", "/v1/plans", chat_only.secret).status == 200
    assert call("GET", "/v1/plans").status == 401


def test_transactions_are_newest_first_in_pages(conn: psycopg.Connection) -> None:
    owner = new_owner()
    key = new_key(owner)
    for amount in (1_000_000_000, 2_000_000_000, 3_000_000_000):
        fund(owner.account_id, amount)
    answered = chat(key.secret)
    assert answered.status == 200
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = call("GET", "/v1/credits/transactions", key.secret, query=query)
        assert page.status == 200, page.raw
        assert len(page.body["data"]) <= 2
        seen += page.body["data"]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    rows = conn.execute(
        "SELECT id, kind, amount_nanos, balance_after_nanos FROM credit_transactions"
        " WHERE account_id = %s ORDER BY id DESC",
        (owner.account_id,),
    ).fetchall()
    assert [(int(e["id"]), e["kind"], nanos(e["amount"]), nanos(e["balance_after"]))
            for e in seen] == [tuple(r) for r in rows]  # fmt: skip
    usage = seen[0]
    request_id = one(conn, "SELECT request_id FROM usage_records WHERE account_id = %s",
                     owner.account_id)  # fmt: skip
    assert (usage["kind"], usage["reference"], usage["key_id"]) == ("usage", request_id, key.id)
    assert usage["description"]
    assert usage["created_at"]


def test_transactions_filter_by_kind_and_date() -> None:
    owner = new_owner()
    key = new_key(owner)
    fund(owner.account_id, 4_000_000_000)
    debit(owner.account_id, 500_000_000)

    def kinds(**query: str) -> list[str]:
        page = call("GET", "/v1/credits/transactions", key.secret, query=query)
        assert page.status == 200, page.raw
        return [entry["kind"] for entry in page.body["data"]]

    assert kinds(kind="admin_debit") == ["admin_debit"]
    assert kinds(kind="admin_grant,admin_debit") == ["admin_debit", "admin_grant"]
    assert kinds(**{"from": "2999-01-01"}) == []
    assert kinds(to="2000-01-01T00:00:00Z") == []
    assert kinds(**{"from": "2000-01-01", "to": "2999-12-31"}) == ["admin_debit", "admin_grant"]
    for query, param in (
        ({"kind": "bogus"}, "kind"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ):
        refused = call("GET", "/v1/credits/transactions", key.secret, query=query)
        assert (refused.status, refused.body["error"]["param"]) == (400, param), query


def test_transactions_never_show_another_accounts_entries() -> None:
    mine, theirs = new_owner(), new_owner()
    fund(theirs.account_id, 9_000_000_000)
    page = call("GET", "/v1/credits/transactions", new_key(mine).secret)
    assert page.body == {"data": [], "next_cursor": None}
    # A cursor pointing past another account's entries shows nothing of them either.
    from gatewayz import pagination

    forged = pagination.encode(2**62)
    page = call("GET", "/v1/credits/transactions", new_key(mine).secret,
                query={"cursor": forged})  # fmt: skip
    assert page.body["data"] == []


def test_plans_list_the_public_plans_and_the_seeded_packs(conn: psycopg.Connection) -> None:
    key = new_key(new_owner())
    got = call("GET", "/v1/plans", key.secret)
    assert got.status == 200, got.raw
    public = [r[0] for r in conn.execute(
        "SELECT id FROM plans WHERE is_public ORDER BY sort_order, id").fetchall()]  # fmt: skip
    assert [p["id"] for p in got.body["data"]] == public
    seeded = tomllib.loads((ROOT / "infra/seed/plans.toml").read_text())
    dev = next(p for p in seeded["plan"] if p["id"] == "dev")
    shown = next(p for p in got.body["data"] if p["id"] == "dev")
    assert shown["monthly_price"] == float(dev["monthly_price_usd"])
    assert shown["included_credit"] == float(dev["included_credit_usd"])
    assert shown["limits"]["requests_per_minute"] == dev["requests_per_minute"]
    assert [(p["id"], p["price"], p["credit"]) for p in got.body["packs"]] == [
        (p["id"], float(p["price_usd"]), float(p["credit_usd"])) for p in seeded["pack"]
    ]
    conn.execute("UPDATE plans SET is_public = false WHERE id = 'team'")
    try:
        hidden = call("GET", "/v1/plans", key.secret).body["data"]
        assert "team" not in [p["id"] for p in hidden]
    finally:
        conn.execute("UPDATE plans SET is_public = true WHERE id = 'team'")


def test_the_subscription_is_the_accounts_live_one(conn: psycopg.Connection) -> None:
    owner, other = new_owner(), new_owner()
    key = new_key(owner)
    assert call("GET", "/v1/subscription", key.secret).body == {"data": None}
    conn.execute(
        """INSERT INTO subscriptions (account_id, plan_id, stripe_subscription_id, status,
                                      current_period_end, cancel_at_period_end)
           VALUES (%s, 'team', 'sub_other', 'active', now() + interval '9 days', false)""",
        (other.account_id,),
    )
    assert call("GET", "/v1/subscription", key.secret).body == {"data": None}
    conn.execute(
        """INSERT INTO subscriptions (account_id, plan_id, stripe_subscription_id, status,
                                      current_period_end, cancel_at_period_end)
           VALUES (%s, 'dev', 'sub_old', 'canceled', now() - interval '1 day', false),
                  (%s, 'dev', 'sub_live', 'active', '2030-01-31T00:00:00Z', true)""",
        (owner.account_id, owner.account_id),
    )
    data = call("GET", "/v1/subscription", key.secret).body["data"]
    assert data["plan"] == {"id": "dev", "name": "Dev"}
    assert (data["status"], data["cancel_at_period_end"]) == ("active", True)
    assert data["current_period_end"].startswith("2030-01-31T00:00:00")


def test_the_trial_shows_its_credit_while_it_runs(conn: psycopg.Connection) -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    data = call("GET", "/v1/trial", key.secret).body["data"]
    assert (data["active"], data["credit_granted"], data["credit_remaining"]) == (True, 10, 10)
    assert data["started_at"]
    assert data["ends_at"]
    assert data["expired_at"] is None
    assert chat(key.secret).status == 200
    fund(owner.account_id, 3_000_000_000)  # bought credit is not trial credit
    data = call("GET", "/v1/trial", key.secret).body["data"]
    balance = one(conn, "SELECT balance_nanos FROM accounts WHERE id = %s", owner.account_id)
    assert nanos(data["credit_remaining"]) == min(balance, 10_000_000_000) == 10_000_000_000
    debit(owner.account_id, 4_000_000_000)
    data = call("GET", "/v1/trial", key.secret).body["data"]
    assert nanos(data["credit_remaining"]) == balance - 4_000_000_000 < 10_000_000_000
    conn.execute("UPDATE accounts SET trial_expired_at = now() WHERE id = %s", (owner.account_id,))
    data = call("GET", "/v1/trial", key.secret).body["data"]
    assert (data["active"], data["credit_remaining"]) == (False, None)
    assert data["expired_at"] is not None
    payg = call("GET", "/v1/trial", new_key(new_owner()).secret).body["data"]
    assert (payg["active"], payg["started_at"], payg["credit_granted"]) == (False, None, 0)
