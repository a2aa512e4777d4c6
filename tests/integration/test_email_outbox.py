"""The `email_outbox` job: queued notices go out through Resend (the real `resend`
package against a fake Resend API) exactly once, however often the job runs, whatever
Resend answers; or, with no Resend key outside Lambda, into the local outbox's files."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db, jobs
from gatewayz.email import delivery, outbox, sender
from tests.conftest import reset_caches
from tests.factories import new_owner
from tests.fakes import resend as fake_resend
from tests.functions.events import function
from tests.overlap import run_at_once
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")
EVENT = ROOT / "infra" / "events" / "scheduled" / "email_outbox.json"
FROM = "Gatewayz <billing@gatewayz.example>"


@pytest.fixture
def fake() -> Iterator[fake_resend.FakeResend]:
    with fake_resend.serve() as served:
        yield served


@pytest.fixture
def configured(fake: fake_resend.FakeResend, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """RESEND_API_KEY, EMAIL_FROM and RESEND_BASE_URL pointing at the fake."""
    monkeypatch.setenv("RESEND_API_KEY", fake.api_key)
    monkeypatch.setenv("RESEND_BASE_URL", fake.url)
    monkeypatch.setenv("EMAIL_FROM", FROM)
    reset_caches()
    yield
    monkeypatch.undo()
    reset_caches()


def queue_notice(template: str = "payment_received", **payload: Any) -> tuple[str, str]:
    """A notice for a new account's owner; (outbox row id, the owner's address)."""
    owner = new_owner()
    with db.transaction() as cur:
        assert outbox.queue(
            cur, account_id=owner.account_id, template=template, subject="Payment received",
            payload=payload or {"amount_nanos": 25_000_000_000}, dedupe_key=str(uuid.uuid4()),
        )  # fmt: skip
        row = cur.execute(
            "SELECT id, to_address FROM email_outbox WHERE account_id = %s", (owner.account_id,)
        ).fetchone()
    assert row is not None
    return str(row[0]), row[1]


def row(conn: psycopg.Connection, row_id: str) -> dict[str, Any]:
    found = conn.execute(
        """SELECT status, attempts, last_error, provider_message_id, html, text_body,
                  send_after - now() AS wait
             FROM email_outbox WHERE id = %s""",
        (row_id,),
    ).fetchone()
    assert found is not None
    names = ("status", "attempts", "last_error", "provider_id", "html", "text", "wait")
    return dict(zip(names, found, strict=True))


def make_due(conn: psycopg.Connection, row_id: str) -> None:
    """As if the backoff had passed."""
    conn.execute("UPDATE email_outbox SET send_after = now() WHERE id = %s", (row_id,))


def run_job() -> dict[str, Any]:
    report: dict[str, Any] = function("scheduled").handler(json.loads(EVENT.read_text()), None)
    return report


@pytest.mark.usefixtures("configured")
def test_a_queued_notice_is_sent_once_with_both_bodies_and_its_id_as_idempotency_key(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    row_id, address = queue_notice(amount_nanos=25_000_000_000)
    report = run_job()
    assert (report["status"], report["sender"]) == ("ok", "resend")
    [mail] = fake.sent_to(address)
    assert (mail["from"], mail["subject"]) == (FROM, "Payment received")
    assert "$25.00" in mail["text"]
    assert "$25.00" in mail["html"]
    [request] = [r for r in fake.requests if address in r["body"]["to"]]
    assert request["idempotency_key"] == row_id
    state = row(conn, row_id)
    assert (state["status"], state["attempts"], state["provider_id"]) == ("sent", 1, mail["id"])
    assert (state["html"], state["text"]) == (mail["html"], mail["text"])
    run_job()
    assert len(fake.sent_to(address)) == 1


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize("after_sending", [False, True], ids=["refused", "answer-lost"])
def test_resend_answering_500_then_200_sends_one_email(
    conn: psycopg.Connection, fake: fake_resend.FakeResend, after_sending: bool
) -> None:
    row_id, address = queue_notice()
    fake.fail_next(1, 500, after_sending=after_sending)
    # Only this row is due, so the one failure is its own.
    conn.execute("UPDATE email_outbox SET send_after = now() + interval '1 hour' WHERE id <> %s"
                 " AND status = 'pending'", (row_id,))  # fmt: skip
    assert run_job()["retrying"] == 1
    first = row(conn, row_id)
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert "500" in first["last_error"]
    assert fake.api_key not in first["last_error"]
    make_due(conn, row_id)
    assert run_job()["sent"] >= 1
    [mail] = fake.sent_to(address)
    assert row(conn, row_id)["provider_id"] == mail["id"]
    keys = [r["idempotency_key"] for r in fake.requests if address in r["body"]["to"]]
    assert keys == [row_id, row_id]


def test_failures_back_off_exponentially_then_give_up(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    row_id, _ = queue_notice()
    resend = sender.ResendSender(fake.api_key, FROM, fake.url)
    fake.fail_next(delivery.MAX_ATTEMPTS * 10, 429)
    waits = []
    for attempt in range(1, delivery.MAX_ATTEMPTS + 1):
        make_due(conn, row_id)
        delivery.run(resend)
        state = row(conn, row_id)
        assert state["attempts"] == attempt
        waits.append(state["wait"])
        if attempt < delivery.MAX_ATTEMPTS:
            assert state["status"] == "pending"
    assert row(conn, row_id)["status"] == "failed"
    # Each wait about doubles (measured from the database's clock, allowing a slow run).
    for attempt, wait in enumerate(waits[:4], start=1):
        expected = delivery.backoff(attempt)
        assert expected - timedelta(seconds=30) < wait <= expected
    assert delivery.backoff(2) == 2 * delivery.backoff(1)
    assert delivery.backoff(50) == delivery.LONGEST_RETRY


def test_an_email_resend_refuses_as_invalid_is_not_retried(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    row_id, _ = queue_notice()
    fake.fail_next(1000, 422)
    delivery.run(sender.ResendSender(fake.api_key, FROM, fake.url))
    fake.fail_next(0)
    state = row(conn, row_id)
    assert (state["status"], state["attempts"]) == ("failed", 1)


def test_two_concurrent_runs_send_each_email_once(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    ids = [queue_notice()[0] for _ in range(3 * delivery.BATCH)]
    resend = sender.ResendSender(fake.api_key, FROM, fake.url)
    reports = run_at_once(lambda: delivery.run(resend), 2)
    assert len(reports) == 2
    requested = [r["idempotency_key"] for r in fake.requests]
    assert sorted(k for k in requested if k in set(ids)) == sorted(ids)  # each sent once
    statuses = conn.execute(
        "SELECT status, count(*) FROM email_outbox WHERE id = ANY(%s::uuid[]) GROUP BY status",
        (ids,),
    ).fetchall()
    assert statuses == [("sent", len(ids))]


class SecondRunMidway:
    """Resend, with another whole run of the job while the first e-mail is being sent."""

    name = "resend"

    def __init__(self, inner: sender.ResendSender) -> None:
        self.inner = inner
        self.second: list[dict[str, Any]] | None = None

    def send(self, message: sender.Message) -> str:
        if self.second is None:
            self.second = run_at_once(lambda: delivery.run(self.inner), 1)
        return self.inner.send(message)


def test_a_run_never_takes_the_rows_another_run_is_sending(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    ids = [queue_notice()[0] for _ in range(delivery.BATCH + 5)]
    midway = SecondRunMidway(sender.ResendSender(fake.api_key, FROM, fake.url))
    delivery.run(midway)
    assert midway.second is not None
    assert midway.second[0]["sent"] >= 5  # the rows the first run had not claimed
    requested = [r["idempotency_key"] for r in fake.requests if r["idempotency_key"] in ids]
    assert sorted(requested) == sorted(ids)


def test_a_crashed_runs_rows_come_back_when_the_lease_ends(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    row_id, address = queue_notice()
    # A run claimed the row and died before sending it.
    conn.execute(
        """UPDATE email_outbox SET status = 'sending', attempts = 1,
                  send_after = now() + interval '10 minutes' WHERE id = %s""",
        (row_id,),
    )
    resend = sender.ResendSender(fake.api_key, FROM, fake.url)
    delivery.run(resend)
    assert fake.sent_to(address) == []  # still leased
    make_due(conn, row_id)
    delivery.run(resend)
    assert len(fake.sent_to(address)) == 1
    assert row(conn, row_id)["status"] == "sent"


def test_without_a_resend_key_emails_go_to_the_local_outbox(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    row_id, address = queue_notice(amount_nanos=5_000_000_000)
    local = sender.LocalOutbox(tmp_path / "outbox")
    assert delivery.run(local)["sent"] >= 1
    [txt] = (tmp_path / "outbox").glob(f"*-payment_received-{row_id}.txt")
    html = txt.with_suffix(".html")
    assert f"To: {address}" in txt.read_text()
    assert "$5.00" in txt.read_text()
    assert "<p>" in html.read_text()
    assert "$5.00" in html.read_text()
    assert row(conn, row_id)["status"] == "sent"
    listed = sender.local_messages(tmp_path / "outbox")
    assert any(m["text"] == str(txt) and m["to"] == address for m in listed)
    names = [m["text"] for m in listed]
    assert names == sorted(names, reverse=True)  # newest first


def test_the_job_uses_the_local_outbox_by_default_outside_lambda(conn: psycopg.Connection) -> None:
    row_id, _ = queue_notice()
    report = run_job()
    assert (report["status"], report["sender"]) == ("ok", "local")
    assert list(sender.outbox_dir().glob(f"*{row_id}.html"))


def test_in_lambda_without_a_resend_key_the_job_reports_it_and_sends_nothing(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    row_id, _ = queue_notice()
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-scheduled")
    try:
        report = jobs.run({"job": "email_outbox"})
    finally:
        monkeypatch.undo()
    assert report == {
        "job": "email_outbox",
        "status": "missing_configuration",
        "setting": "RESEND_API_KEY",
    }
    assert row(conn, row_id)["status"] == "pending"


def test_a_row_with_an_unknown_template_fails_without_sending(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    found = conn.execute(
        """INSERT INTO email_outbox (to_address, template, subject) VALUES
           ('x@example.com', 'no_such_notice', 'Hi') RETURNING id"""
    ).fetchone()
    assert found is not None
    delivery.run(sender.ResendSender(fake.api_key, FROM, fake.url))
    state = row(conn, str(found[0]))
    assert state["status"] == "failed"
    assert "no_such_notice" in state["last_error"]
    assert fake.sent_to("x@example.com") == []


def test_a_row_whose_every_attempt_died_ends_failed(
    conn: psycopg.Connection, fake: fake_resend.FakeResend
) -> None:
    row_id, address = queue_notice()
    conn.execute(
        """UPDATE email_outbox SET status = 'sending', attempts = %s,
                  send_after = now() - interval '1 second' WHERE id = %s""",
        (delivery.MAX_ATTEMPTS, row_id),
    )
    report = delivery.run(sender.ResendSender(fake.api_key, FROM, fake.url))
    assert report["failed"] >= 1
    assert row(conn, row_id)["status"] == "failed"
    assert fake.sent_to(address) == []
