"""The `trial_expiry` job: a trial that ran out loses its unspent trial credit (what was
spent stays spent, holds in flight are left alone), moves to the free plan and gets the
`trial_ended` e-mail, once, however many runs overlap; a converted trial is untouched."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.billing import credits, trial_expiry
from tests import ledger
from tests.factories import fund, new_hold, new_owner
from tests.functions.events import function
from tests.overlap import run_at_once
from tests.pg import ROOT

if TYPE_CHECKING:
    import psycopg

    from gatewayz.identity.accounts import Owner

pytestmark = pytest.mark.usefixtures("database_url")
EVENT = ROOT / "infra" / "events" / "scheduled" / "trial_expiry.json"
TRIAL = 10_000_000_000  # the seeded trial plan's credit
USD = 1_000_000_000


def run_job() -> dict[str, Any]:
    report: dict[str, Any] = function("scheduled").handler(json.loads(EVENT.read_text()), None)
    assert (report["job"], report["status"]) == ("trial_expiry", "ok")
    return report


def ended_trial(conn: psycopg.Connection) -> Owner:
    """A trial account whose three days are over."""
    owner = new_owner("trial")
    conn.execute(
        """UPDATE accounts SET trial_started_at = now() - interval '4 days',
                               trial_ends_at = now() - interval '1 hour' WHERE id = %s""",
        (owner.account_id,),
    )
    return owner


def spend(account_id: str, nanos: int) -> None:
    with db.transaction() as cur:
        credits.post(cur, account_id=account_id, kind="admin_debit", amount_nanos=-nanos)


def state(conn: psycopg.Connection, account_id: str) -> dict[str, Any]:
    found = conn.execute(
        """SELECT a.plan_id, a.balance_nanos, a.trial_expired_at IS NOT NULL,
                  (SELECT array_agg(t.amount_nanos) FROM credit_transactions t
                    WHERE t.account_id = a.id AND t.kind = 'trial_expiry'),
                  (SELECT array_agg(o.template) FROM email_outbox o WHERE o.account_id = a.id),
                  (SELECT array_agg(l.actor_kind || ' ' || l.action) FROM audit_log l
                    WHERE l.target_id = a.id::text AND l.action = 'account.trial_end')
             FROM accounts a WHERE a.id = %s""",
        (account_id,),
    ).fetchone()
    assert found is not None
    names = ("plan", "balance", "expired", "debits", "emails", "audit")
    return dict(zip(names, found, strict=True))


def test_an_ended_trial_loses_only_its_unspent_credit_and_moves_to_free(
    conn: psycopg.Connection,
) -> None:
    owner = ended_trial(conn)
    spend(owner.account_id, 3 * USD)
    hold = new_hold(owner.account_id, USD)  # a request in flight
    run_job()
    after = state(conn, owner.account_id)
    assert after == {
        "plan": "free", "balance": 0, "expired": True, "debits": [-(TRIAL - 4 * USD)],
        "emails": ["trial_ended"], "audit": ["system account.trial_end"],
    }  # fmt: skip
    held = conn.execute(
        "SELECT amount_nanos FROM credit_holds WHERE request_id = %s", (hold.request_id,)
    ).fetchone()
    assert held == (USD,)  # untouched
    assert ledger.invariant_holds(conn, owner.account_id)
    payload = conn.execute(
        "SELECT payload FROM email_outbox WHERE account_id = %s", (owner.account_id,)
    ).fetchone()
    assert payload == ({"removed_nanos": TRIAL - 4 * USD, "plan": "free"},)


def test_credit_beyond_the_trial_grant_is_kept(conn: psycopg.Connection) -> None:
    owner = ended_trial(conn)
    fund(owner.account_id, 5 * USD)  # an admin grant during the trial
    run_job()
    after = state(conn, owner.account_id)
    assert (after["balance"], after["debits"], after["plan"]) == (5 * USD, [-TRIAL], "free")


def test_a_trial_spent_in_full_ends_with_no_debit(conn: psycopg.Connection) -> None:
    owner = ended_trial(conn)
    spend(owner.account_id, TRIAL)
    run_job()
    after = state(conn, owner.account_id)
    assert (after["plan"], after["balance"], after["debits"], after["expired"]) == (
        "free",
        0,
        None,
        True,
    )


def test_a_converted_trial_keeps_its_credit_and_never_expires(conn: psycopg.Connection) -> None:
    converted = ended_trial(conn)
    conn.execute(
        "UPDATE accounts SET plan_id = 'payg', trial_converted_at = now() WHERE id = %s",
        (converted.account_id,),
    )
    # Converted a moment ago, the plan not yet changed: still not expired.
    converting = ended_trial(conn)
    conn.execute(
        "UPDATE accounts SET trial_converted_at = now() WHERE id = %s", (converting.account_id,)
    )
    running = new_owner("trial")  # its trial still runs
    run_job()
    for owner, plan in ((converted, "payg"), (converting, "trial"), (running, "trial")):
        after = state(conn, owner.account_id)
        assert (after["plan"], after["balance"], after["debits"], after["expired"]) == (
            plan,
            TRIAL,
            None,
            False,
        )


def test_runs_overlapping_end_each_trial_once(conn: psycopg.Connection) -> None:
    owners = [ended_trial(conn) for _ in range(2 * trial_expiry.BATCH + 5)]
    reports = run_at_once(trial_expiry.run, 3)
    assert len(reports) == 3
    ids = [owner.account_id for owner in owners]
    counts = conn.execute(
        """SELECT count(*) FILTER (WHERE kind = 'trial_expiry'), count(DISTINCT account_id)
             FROM credit_transactions WHERE account_id = ANY(%s::uuid[])""",
        (ids,),
    ).fetchone()
    assert counts == (len(ids), len(ids))
    emails = conn.execute(
        "SELECT count(*) FROM email_outbox WHERE account_id = ANY(%s::uuid[])", (ids,)
    ).fetchone()
    assert emails == (len(ids),)
    assert all(state(conn, i)["balance"] == 0 for i in ids)
    run_job()  # a later run finds nothing more to do
    assert all(state(conn, i)["debits"] == [-TRIAL] for i in ids)
    assert all(ledger.invariant_holds(conn, i) for i in ids)
