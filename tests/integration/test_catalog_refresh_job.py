"""`catalog_refresh` as the schedule runs it (`jobs.run`) and by hand (`gatewayz catalog
refresh`, its own process), reading the configured providers' lists: Chutes here, its
key and base URL pointing at the fake upstream, which lists ids without prices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import jobs
from tests.conftest import reset_caches
from tests.fakes.openai_upstream import serve

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

    from tests.fakes.openai_upstream import FakeUpstream

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def chutes(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    """The fake upstream as the only configured provider, `chutes`."""
    with serve() as fake:
        monkeypatch.setenv("CHUTES_API_KEY", "chutes-test-key")
        monkeypatch.setenv("CHUTES_BASE_URL", fake.base_url)
        reset_caches()
        yield fake
    monkeypatch.undo()
    reset_caches()


def chutes_offers(conn: psycopg.Connection) -> dict[str, bool]:
    """The seeded Chutes offers: provider model id -> active."""
    rows = conn.execute(
        "SELECT provider_model_id, is_active FROM model_offers WHERE provider = 'chutes'"
    ).fetchall()
    return dict(rows)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m gatewayz.dev.cli ARGS` with this run's settings; its report is the last
    line of stdout (log lines, JSON too, may come before it)."""
    return subprocess.run(
        [sys.executable, "-m", "gatewayz.dev.cli", *args],
        capture_output=True, text=True, env=dict(os.environ), timeout=60, check=False,
    )  # fmt: skip


def last(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_the_scheduled_job_reads_the_configured_providers(
    conn: psycopg.Connection, chutes: FakeUpstream
) -> None:
    seeded = chutes_offers(conn)
    assert seeded
    assert all(seeded.values())
    chutes.model_list = [{"id": model_id, "object": "model"} for model_id in seeded]
    report = jobs.run({"job": "catalog_refresh"})
    assert report["status"] == "ok"
    assert report["provider_names"] == ["chutes"]
    assert (report["listed"], report["offers_retired"], report["prices_changed"]) == (
        len(seeded), 0, 0,
    )  # fmt: skip
    assert chutes.last.path == "/v1/models"
    assert chutes.last.headers["authorization"] == "Bearer chutes-test-key"
    assert chutes_offers(conn) == seeded


def test_gatewayz_catalog_refresh_runs_it_by_hand(
    conn: psycopg.Connection, chutes: FakeUpstream
) -> None:
    seeded = chutes_offers(conn)
    dropped, *kept = sorted(seeded)
    chutes.model_list = [{"id": model_id} for model_id in kept]
    done = cli("catalog", "refresh")
    assert done.returncode == 0, done.stderr
    report = last(done)
    assert (report["job"], report["status"], report["offers_retired"]) == (
        "catalog_refresh", "ok", 1,
    )  # fmt: skip
    assert chutes_offers(conn) == {**seeded, dropped: False}
    chutes.model_list = [{"id": model_id} for model_id in seeded]
    assert last(cli("catalog", "refresh"))["offers_restored"] == 1
    assert chutes_offers(conn) == seeded
    # A provider whose list cannot be read: nothing changes, and the command says so.
    chutes.models_status = 503
    failed = cli("catalog", "refresh")
    assert failed.returncode == 1
    assert last(failed)["status"] == "failed"
    assert chutes_offers(conn) == seeded
