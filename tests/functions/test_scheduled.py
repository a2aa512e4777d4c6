"""The scheduled function, driven by the events EventBridge Scheduler sends."""

from __future__ import annotations

import json

import pytest

from gatewayz import jobs
from tests.functions.events import function
from tests.pg import ROOT

EVENTS = sorted((ROOT / "infra" / "events" / "scheduled").glob("*.json"))


def test_there_is_an_event_for_every_job() -> None:
    assert sorted(path.stem for path in EVENTS) == sorted(jobs.JOB_NAMES)


@pytest.mark.parametrize("path", EVENTS, ids=lambda path: path.stem)
def test_each_job_event_runs_its_job(path: object) -> None:
    event = json.loads(path.read_text())  # type: ignore[attr-defined]
    report = function("scheduled").handler(event, None)
    assert report["job"] == event["job"]
    assert report["status"] in {"ok", "not_implemented"}


@pytest.mark.parametrize("event", [{}, {"job": "mine_bitcoin"}, {"job": None}])
def test_an_unknown_job_fails_loudly_so_the_scheduler_dead_letters_it(event: dict) -> None:
    with pytest.raises(jobs.UnknownJob, match="unknown job"):
        function("scheduled").handler(event, None)
