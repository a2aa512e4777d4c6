"""`GET /v1/usage` through the billing function's handler: usage rows of the caller's
account grouped by day, model, key, member and provider over a date range, as JSON or
CSV that a spreadsheet will not run."""

from __future__ import annotations

import csv
import io
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz.billing import money
from tests.factories import new_key, new_member, new_owner
from tests.functions.billing_api import call, chat

if TYPE_CHECKING:
    import psycopg

    from gatewayz.identity.keys import NewKey

pytestmark = pytest.mark.usefixtures("database_url")
SPAN = {"from": "2026-01-10", "to": "2026-01-11"}  # both days, whole


def record(conn: psycopg.Connection, key: NewKey, account_id: str, at: str, model: str,
           provider: str, cost: int, **tokens: int) -> None:  # fmt: skip
    """A usage row as settling writes it (its ledger entry is not what these tests read)."""
    columns = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0,
               "reasoning_tokens": 0, **tokens}  # fmt: skip
    conn.execute(
        """INSERT INTO usage_records (request_id, account_id, api_key_id, endpoint, model,
               provider, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
               cost_nanos, status, created_at)
           VALUES (%s, %s, %s, 'chat.completions', %s, %s, %s, %s, %s, %s, %s, 200, %s)""",
        (f"req_{uuid.uuid4().hex}", account_id, key.id, model, provider,
         columns["input_tokens"], columns["cached_input_tokens"], columns["output_tokens"],
         columns["reasoning_tokens"], cost, at),
    )  # fmt: skip


@pytest.fixture
def team(conn: psycopg.Connection) -> dict[str, Any]:
    """An account with two members' keys and three requests over two UTC days, and
    another account's request on the first day."""
    owner = new_owner()
    member = new_member(owner, "member")
    own_key, member_key = new_key(owner), new_key(member)
    record(conn, own_key, owner.account_id, "2026-01-10T10:00:00Z", "a/x", "openrouter", 1000,
           input_tokens=100, output_tokens=50)  # fmt: skip
    record(conn, member_key, owner.account_id, "2026-01-10T23:59:59Z", "b/y", "chutes", 2000,
           input_tokens=20, output_tokens=7)  # fmt: skip
    record(conn, member_key, owner.account_id, "2026-01-11T00:00:01Z", "a/x", "openrouter",
           4000, input_tokens=300, cached_input_tokens=10, output_tokens=30,
           reasoning_tokens=5)  # fmt: skip
    stranger = new_owner()
    record(conn, new_key(stranger), stranger.account_id, "2026-01-10T12:00:00Z", "a/x",
           "openrouter", 99_999, output_tokens=1)  # fmt: skip
    return {"owner": owner, "member": member, "own_key": own_key, "member_key": member_key}


def usage(secret: str, **query: str) -> dict[str, Any]:
    got = call("GET", "/v1/usage", secret, query=query)
    assert got.status == 200, got.raw
    body: dict[str, Any] = got.body
    return body


def nanos(usd: Any) -> int:
    return money.usd_to_nanos(str(usd))


def test_usage_by_day_counts_only_the_callers_account(team: dict[str, Any]) -> None:
    body = usage(team["own_key"].secret, **SPAN)
    assert body["group_by"] == ["day"]
    rows = [(r["day"], r["requests"], nanos(r["cost"]), r["input_tokens"]) for r in body["data"]]
    assert rows == [("2026-01-10", 2, 3000, 120), ("2026-01-11", 1, 4000, 300)]
    total = body["total"]
    assert (total["requests"], nanos(total["cost"]), total["output_tokens"]) == (3, 7000, 87)
    assert (total["cached_input_tokens"], total["reasoning_tokens"]) == (10, 5)
    assert body["from"].startswith("2026-01-10T00:00:00")
    assert body["to"].startswith("2026-01-12")
    # A member's key reads the same account's usage.
    assert usage(team["member_key"].secret, **SPAN)["total"] == total


def test_usage_by_model_and_provider_key_and_member(team: dict[str, Any]) -> None:
    secret = team["own_key"].secret
    rows = usage(secret, group_by="model,provider", **SPAN)["data"]
    assert [(r["model"], r["provider"], r["requests"], nanos(r["cost"])) for r in rows] == [
        ("a/x", "openrouter", 2, 5000),
        ("b/y", "chutes", 1, 2000),
    ]
    by_key = {r["key_id"]: (r["key_name"], r["requests"]) for r in
              usage(secret, group_by="key", **SPAN)["data"]}  # fmt: skip
    assert by_key == {team["own_key"].id: ("test key", 1), team["member_key"].id: ("test key", 2)}
    by_member = usage(secret, group_by="member", **SPAN)["data"]
    assert {r["user_id"]: nanos(r["cost"]) for r in by_member} == {
        team["owner"].user_id: 1000,
        team["member"].user_id: 6000,
    }
    assert all(r["email"].endswith("@example.com") for r in by_member)
    days = usage(secret, group_by="member,day", **SPAN)["data"]
    assert len(days) == 3


def test_usage_defaults_to_the_last_30_days_by_day() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    assert usage(key.secret)["data"] == []
    assert chat(key.secret).status == 200
    body = usage(key.secret)
    assert [(r["requests"], r["input_tokens"] > 0) for r in body["data"]] == [(1, True)]
    assert nanos(body["total"]["cost"]) > 0


def test_usage_as_csv_neutralises_formulas(conn: psycopg.Connection) -> None:
    owner = new_owner()
    evil = new_key(owner, name='=HYPERLINK("http://x")')
    record(conn, evil, owner.account_id, "2026-01-10T08:00:00Z", "@sum/a1", "-provider", 1234,
           output_tokens=3)  # fmt: skip
    got = call("GET", "/v1/usage", evil.secret,
               query={"format": "csv", "group_by": "key,model,provider", **SPAN})  # fmt: skip
    assert got.status == 200, got.raw
    assert got.content_type is not None
    assert got.content_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.raw)))
    assert rows[0] == ["key_id", "key_name", "model", "provider", "requests", "input_tokens",
                       "cached_input_tokens", "output_tokens", "reasoning_tokens", "images",
                       "cost"]  # fmt: skip
    assert rows[1][:5] == [evil.id, '\'=HYPERLINK("http://x")', "'@sum/a1", "'-provider", "1"]
    assert rows[1][-1] == "0.000001234"
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"group_by": "week"}, "group_by"),
        ({"group_by": "day,day"}, "group_by"),
        ({"group_by": ""}, "group_by"),
        ({"from": "last tuesday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),
        ({"from": "2026-01-02", "to": "2026-01-01"}, "from"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_parameters_are_400s_naming_them(query: dict[str, str], param: str) -> None:
    got = call("GET", "/v1/usage", new_key(new_owner()).secret, query=query)
    assert (got.status, got.code, got.body["error"]["param"]) == (
        400, "invalid_request_error", param)  # fmt: skip
