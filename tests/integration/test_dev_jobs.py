"""The scheduled jobs locally: `gatewayz dev`'s job timer (same entry point as the
scheduled function, failing jobs logged and retried, a clean stop), `gatewayz jobs run
NAME` and `gatewayz outbox`."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from gatewayz import db
from gatewayz.dev import cli, job_timer, samtemplate
from gatewayz.email import outbox, sender
from tests.factories import new_owner
from tests.pg import ROOT

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("database_url")
WAIT_S = 30  # how long to wait for a background run (never a timing assertion)


def queue_notice() -> str:
    owner = new_owner()
    with db.transaction() as cur:
        outbox.queue(
            cur,
            account_id=owner.account_id,
            template="low_balance",
            subject="Low",
            payload={"balance_nanos": 1},
            dedupe_key=str(uuid.uuid4()),
        )
        found = cur.execute("SELECT id FROM email_outbox WHERE account_id = %s",
                            (owner.account_id,)).fetchone()  # fmt: skip
    assert found is not None
    return str(found[0])


def outbox_files(row_id: str) -> list[Path]:
    return sorted(sender.outbox_dir().glob(f"*-{row_id}.*"))


def wait_for(check: object) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_intervals_follow_the_template_with_a_quick_outbox() -> None:
    template = samtemplate.load(ROOT / "template.yaml")
    found = job_timer.intervals(template.functions["scheduled"].schedules)
    assert found["email_outbox"] == job_timer.LOCAL_INTERVALS_S["email_outbox"]
    assert found["hold_sweeper"] == 5 * 60
    assert found["catalog_refresh"] == job_timer.DAILY_S  # a cron schedule
    assert job_timer.interval_s("rate(1 hour)") == 3600


def test_the_timer_runs_jobs_keeps_going_past_a_failing_one_and_stops_cleanly() -> None:
    row_id = queue_notice()
    timer = job_timer.JobTimer({"email_outbox": 0.05, "no_such_job": 0.01})
    timer.start()
    try:
        assert wait_for(lambda: len(outbox_files(row_id)) == 2)
        assert wait_for(lambda: timer.failures["no_such_job"] >= 3)
        assert wait_for(lambda: timer.runs["email_outbox"] >= 3)
    finally:
        stopped = timer.stop()
    assert stopped
    assert not timer.running
    status = db.execute("SELECT status FROM email_outbox WHERE id = %s", (row_id,)).fetchone()
    assert status == ("sent",)


def test_jobs_run_runs_one_job_like_the_scheduled_function(
    capsys: pytest.CaptureFixture[str],
) -> None:
    row_id = queue_notice()
    assert cli.main(["jobs", "run", "email_outbox"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["job"], report["status"], report["sender"]) == ("email_outbox", "ok", "local")
    assert report["sent"] >= 1
    assert len(outbox_files(row_id)) == 2
    assert cli.main(["jobs", "run", "low_balance_alerts"]) == 0
    assert json.loads(capsys.readouterr().out)["job"] == "low_balance_alerts"
    assert cli.main(["jobs", "run", "mine_bitcoin"]) == 2
    assert "unknown job" in capsys.readouterr().err


def test_outbox_lists_the_local_outbox_newest_first(capsys: pytest.CaptureFixture[str]) -> None:
    row_id = queue_notice()
    cli.main(["jobs", "run", "email_outbox"])
    capsys.readouterr()
    assert cli.main(["outbox", "--limit", "500"]) == 0
    listing = capsys.readouterr().out
    [txt] = [path for path in outbox_files(row_id) if path.suffix == ".txt"]
    assert str(txt) in listing
    assert "low_balance" in listing
    dates = [line.split()[0] for line in listing.splitlines() if not line.startswith(" ")]
    assert dates == sorted(dates, reverse=True)
