"""The `low_balance_alerts` job: low balance once per crossing, trial ending once per
trial, key limits at 80% and 100% once per window, monthly spend alerts once per
threshold and month, the spending limit once per month; turned-off notices are not
queued, essential ones always are; overlapping runs queue each once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.billing import alerts, credits
from tests.factories import fund, new_key, new_member, new_owner
from tests.functions.events import function
from tests.overlap import run_at_once
from tests.pg import ROOT

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")
EVENT = ROOT / "infra" / "events" / "scheduled" / "low_balance_alerts.json"
USD = 1_000_000_000
MONTH_START = "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def run_job() -> dict[str, Any]:
    report: dict[str, Any] = function("scheduled").handler(json.loads(EVENT.read_text()), None)
    assert (report["job"], report["status"]) == ("low_balance_alerts", "ok")
    return report


def emails(conn: psycopg.Connection, account_id: str) -> list[tuple[str, dict[str, Any], str]]:
    rows = conn.execute(
        """SELECT template, payload, to_address FROM email_outbox
            WHERE account_id = %s ORDER BY created_at, id""",
        (account_id,),
    ).fetchall()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def templates(conn: psycopg.Connection, account_id: str) -> list[str]:
    return [template for template, _, _ in emails(conn, account_id)]


def set_account(conn: psycopg.Connection, account_id: str, assignments: str, *args: Any) -> None:
    conn.execute(f"UPDATE accounts SET {assignments} WHERE id = %s", (*args, account_id))


def move(account_id: str, nanos: int) -> None:
    with db.transaction() as cur:
        if nanos > 0:
            credits.post(cur, account_id=account_id, kind="admin_grant", amount_nanos=nanos)
        else:
            credits.post(cur, account_id=account_id, kind="admin_debit", amount_nanos=nanos)


def test_low_balance_is_sent_once_per_crossing(conn: psycopg.Connection) -> None:
    owner = new_owner()
    fund(owner.account_id, 5 * USD)
    set_account(conn, owner.account_id, "low_balance_threshold_nanos = %s", 10 * USD)
    run_job()
    run_job()
    [(template, payload, _)] = emails(conn, owner.account_id)
    assert (template, payload) == (
        "low_balance",
        {"balance_nanos": 5 * USD, "threshold_nanos": 10 * USD},
    )
    move(owner.account_id, 15 * USD)  # back above: armed again
    run_job()
    assert templates(conn, owner.account_id) == ["low_balance"]
    move(owner.account_id, -18 * USD)  # below again: a second crossing
    run_job()
    run_job()
    assert templates(conn, owner.account_id) == ["low_balance", "low_balance"]


def test_an_account_that_turned_low_balance_off_is_not_emailed(conn: psycopg.Connection) -> None:
    owner = new_owner()
    set_account(
        conn, owner.account_id,
        """low_balance_threshold_nanos = %s, email_preferences = '{"low_balance": false}'""",
        USD,
    )  # fmt: skip
    run_job()
    assert templates(conn, owner.account_id) == []


def test_trial_ending_is_sent_once_in_the_last_day(conn: psycopg.Connection) -> None:
    ending = new_owner("trial")
    set_account(conn, ending.account_id, "trial_ends_at = now() + interval '2 hours'")
    later = new_owner("trial")  # three days left
    run_job()
    run_job()
    [(template, payload, _)] = emails(conn, ending.account_id)
    assert template == "trial_ending"
    assert payload["balance_nanos"] == 10 * USD
    assert templates(conn, later.account_id) == []


def test_a_key_limit_is_reported_at_80_and_100_percent_once_each(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    member = new_member(owner, "member")
    key = new_key(member, spend_limit_nanos=10 * USD, spent_nanos=8 * USD)
    calm = new_key(owner, spend_limit_nanos=10 * USD, spent_nanos=7 * USD)
    run_job()
    run_job()
    member_email = conn.execute("SELECT email FROM users WHERE id = %s", (member.user_id,))
    [(template, payload, to)] = emails(conn, owner.account_id)
    assert (template, payload["level"], payload["key_id"], to) == (
        "key_limit",
        80,
        key.id,
        member_email.fetchone()[0],  # type: ignore[index]
    )
    conn.execute("UPDATE api_keys SET spent_nanos = %s WHERE id = %s", (10 * USD, key.id))
    run_job()
    run_job()
    levels = [p["level"] for _, p, _ in emails(conn, owner.account_id)]
    assert levels == [80, 100]
    assert all(p["key_id"] != calm.id for _, p, _ in emails(conn, owner.account_id))


def test_a_key_spend_from_an_earlier_window_is_not_reported(conn: psycopg.Connection) -> None:
    owner = new_owner()
    new_key(owner, spend_limit_nanos=USD, spent_nanos=USD, limit_reset="daily",
            spent_since="2020-01-01T00:00:00Z")  # fmt: skip
    run_job()
    assert templates(conn, owner.account_id) == []


def test_monthly_spend_alerts_once_per_threshold_and_the_limit_once(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    set_account(
        conn, owner.account_id,
        "spend_alert_thresholds_nanos = %s, monthly_spend_limit_nanos = %s, month_spent_nanos = %s",
        [5 * USD, 20 * USD], 30 * USD, 6 * USD,
    )  # fmt: skip
    run_job()
    run_job()
    [(template, payload, _)] = emails(conn, owner.account_id)
    assert (template, payload["threshold_nanos"], payload["spent_nanos"]) == (
        "spend_alert",
        5 * USD,
        6 * USD,
    )
    set_account(conn, owner.account_id, "month_spent_nanos = %s", 30 * USD)
    run_job()
    run_job()
    found = [(t, p.get("threshold_nanos") or 0) for t, p, _ in emails(conn, owner.account_id)]
    assert sorted(found) == [
        ("spend_alert", 5 * USD),
        ("spend_alert", 20 * USD),
        ("spend_limit_reached", 0),
    ]


def test_last_months_spend_alerts_nothing(conn: psycopg.Connection) -> None:
    owner = new_owner()
    set_account(
        conn, owner.account_id,
        "spend_alert_thresholds_nanos = %s, monthly_spend_limit_nanos = %s, month_spent_nanos = %s,"
        f" month_spent_since = {MONTH_START} - interval '1 month'",
        [USD], USD, 5 * USD,
    )  # fmt: skip
    run_job()
    assert templates(conn, owner.account_id) == []


def test_essential_notices_ignore_preferences(conn: psycopg.Connection) -> None:
    owner = new_owner()
    set_account(
        conn, owner.account_id,
        """monthly_spend_limit_nanos = %s, month_spent_nanos = %s,
           email_preferences = '{"spend_limit_reached": false, "spend_alert": false}',
           spend_alert_thresholds_nanos = %s""",
        USD, 2 * USD, [USD],
    )  # fmt: skip
    run_job()
    assert templates(conn, owner.account_id) == ["spend_limit_reached"]


def test_overlapping_runs_queue_each_alert_once(conn: psycopg.Connection) -> None:
    owners = [new_owner() for _ in range(10)]
    for owner in owners:
        fund(owner.account_id, USD)
        set_account(
            conn, owner.account_id,
            """low_balance_threshold_nanos = %s, monthly_spend_limit_nanos = %s,
               month_spent_nanos = %s, spend_alert_thresholds_nanos = %s""",
            2 * USD, USD, USD, [USD // 2],
        )  # fmt: skip
        new_key(owner, spend_limit_nanos=USD, spent_nanos=USD)
    assert len(run_at_once(alerts.run, 3)) == 3
    for owner in owners:
        assert sorted(templates(conn, owner.account_id)) == [
            "key_limit",
            "low_balance",
            "spend_alert",
            "spend_limit_reached",
        ]
