"""`gatewayz admin` in its own process against this run's database: create a user (the
key printed once works), grant and debit credits, suspend and reactivate, each audited
with the actor `system`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import pytest

from tests import ledger
from tests.functions.keys_api import call

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m gatewayz.dev.cli admin ARGS` with this run's DATABASE_URL and key pepper."""
    return subprocess.run(
        [sys.executable, "-m", "gatewayz.dev.cli", "admin", *args],
        capture_output=True, text=True, env=dict(os.environ), timeout=60, check=False,
    )  # fmt: skip


def system_rows(conn: psycopg.Connection, account_id: str) -> list[str]:
    return [
        action
        for (action,) in conn.execute(
            "SELECT action FROM audit_log WHERE account_id = %s AND actor_kind = 'system'"
            " AND actor_user_id IS NULL ORDER BY id",
            (account_id,),
        ).fetchall()
    ]


def test_create_grant_suspend_and_unsuspend(conn: psycopg.Connection) -> None:
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    created = admin("create-user", email)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("gw_live_")
    assert secret not in created.stderr
    me = call("GET", "/v1/account", secret)
    assert me.status == 200, me.raw
    user_id, account_id = me.body["data"]["user"]["id"], me.body["data"]["account"]["id"]
    assert me.body["data"]["user"]["email"] == email

    granted = admin("grant", account_id, "7.25", "--reason", "support ticket 42")
    assert granted.returncode == 0, granted.stderr
    debited = admin("grant", account_id, "-0.25", "--reason", "correction")
    assert debited.returncode == 0, debited.stderr
    too_much = admin("grant", account_id, "-100", "--reason", "no")
    assert too_much.returncode == 1
    assert "below zero" in too_much.stderr
    amounts = conn.execute(
        "SELECT kind, amount_nanos FROM credit_transactions WHERE account_id = %s ORDER BY id",
        (account_id,),
    ).fetchall()
    assert amounts == [("admin_grant", 7_250_000_000), ("admin_debit", -250_000_000)]
    assert ledger.invariant_holds(conn, account_id)

    suspended = admin("suspend", user_id)
    assert suspended.returncode == 0, suspended.stderr
    refused = call("GET", "/v1/key", secret)
    assert (refused.status, refused.code) == (403, "account_inactive")
    assert admin("unsuspend", user_id).returncode == 0
    assert call("GET", "/v1/key", secret).status == 200
    assert system_rows(conn, account_id) == [
        "user.create", "credits.admin_grant", "credits.admin_debit", "account.suspend",
        "account.reactivate",
    ]  # fmt: skip


def test_errors_are_one_line_and_a_failing_status() -> None:
    taken = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    assert admin("create-user", taken).returncode == 0
    again = admin("create-user", taken)
    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert not again.stdout
    unknown = admin("suspend", str(uuid.uuid4()))
    assert unknown.returncode == 1
    assert "No such user" in unknown.stderr
