"""The `key_rotation` job, driven by its EventBridge event through the scheduled function:
keys whose rotation period is due get a new secret, the old one works for 24 hours more,
the key's user gets one e-mail (never the new secret), and a rerun does nothing twice."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz.identity import auth
from tests.factories import new_key, new_owner
from tests.functions.events import function
from tests.functions.keys_api import audit_rows, call
from tests.pg import ROOT

if TYPE_CHECKING:
    import psycopg

    from gatewayz.identity.keys import NewKey

pytestmark = pytest.mark.usefixtures("database_url")
EVENT = ROOT / "infra" / "events" / "scheduled" / "key_rotation.json"


def run_job() -> dict[str, Any]:
    report: dict[str, Any] = function("scheduled").handler(json.loads(EVENT.read_text()), None)
    assert (report["job"], report["status"]) == ("key_rotation", "ok")
    return report


def due_key(conn: psycopg.Connection, **columns: object) -> NewKey:
    """A key rotated every day, made two days ago: due."""
    key = new_key(new_owner(), rotation_period=timedelta(days=1), **columns)
    conn.execute("UPDATE api_keys SET created_at = now() - interval '2 days' WHERE id = %s",
                 (key.id,))  # fmt: skip
    return key


def state(conn: psycopg.Connection, key_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        """SELECT k.rotated_at, k.prefix, k.last4,
                  (SELECT count(*) FROM api_key_secrets s WHERE s.key_id = k.id),
                  (SELECT max(s.expires_at) - now() FROM api_key_secrets s WHERE s.key_id = k.id)
             FROM api_keys k WHERE k.id = %s""",
        (key_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def emails(conn: psycopg.Connection, key_id: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT to_address, template, subject, payload, dedupe_key FROM email_outbox
            WHERE payload->>'key_id' = %s""",
        (key_id,),
    ).fetchall()


def test_a_due_key_is_rotated_with_a_days_grace_and_its_user_told(
    conn: psycopg.Connection,
) -> None:
    key = due_key(conn)
    report = run_job()
    assert report["rotated"] >= 1
    rotated_at, prefix, last4, secrets, grace = state(conn, key.id)
    assert rotated_at is not None
    assert (secrets, last4 != key.last4) == (2, True)
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(hours=24)
    auth.forget()
    assert call("GET", "/v1/key", key.secret).status == 200  # the old secret, in its grace
    [(to, template, subject, payload, dedupe)] = emails(conn, key.id)
    email = conn.execute(
        "SELECT u.email FROM users u JOIN api_keys k ON k.user_id = u.id WHERE k.id = %s",
        (key.id,),
    ).fetchone()
    assert email is not None
    assert (to, template, payload["last4"], payload["prefix"]) == (
        email[0], "key_rotated", key.last4, key.secret[:12])  # fmt: skip
    text = subject + json.dumps(payload)
    assert f"/v1/keys/{key.id}/rotate" in text
    assert last4 not in text  # nothing of the new secret, which nobody has seen
    assert prefix not in text
    assert dedupe.startswith(f"key_rotated:{key.id}:")
    [(action, actor_kind, actor_key, before, after)] = audit_rows(conn, key.id)
    assert (action, actor_kind, actor_key) == ("key.rotate", "system", None)
    assert (before["last4"], after["last4"], after["grace_period_hours"]) == (key.last4, last4, 24)


def test_a_rerun_rotates_nothing_again_and_queues_no_second_email(
    conn: psycopg.Connection,
) -> None:
    key = due_key(conn)
    run_job()
    first = state(conn, key.id)
    run_job()
    assert state(conn, key.id)[:4] == first[:4]
    assert len(emails(conn, key.id)) == 1
    assert len(audit_rows(conn, key.id)) == 1


def test_the_email_of_a_rotation_is_queued_once_even_if_the_rotation_runs_twice(
    conn: psycopg.Connection,
) -> None:
    """Were a rotation done again for the same due date (its first run's rotated_at
    lost), the e-mail for that date is not queued again."""
    key = due_key(conn)
    run_job()
    conn.execute("UPDATE api_keys SET rotated_at = NULL WHERE id = %s", (key.id,))
    run_job()
    assert state(conn, key.id)[3] == 3  # rotated twice
    assert len(emails(conn, key.id)) == 1


def test_keys_not_due_revoked_disabled_or_expired_are_left_alone(
    conn: psycopg.Connection,
) -> None:
    not_due = new_key(new_owner(), rotation_period=timedelta(days=30))
    no_period = new_key(new_owner())
    conn.execute("UPDATE api_keys SET created_at = now() - interval '400 days' WHERE id = %s",
                 (no_period.id,))  # fmt: skip
    revoked = due_key(conn, revoked_at="2020-01-01T00:00:00Z")
    disabled = due_key(conn, disabled=True)
    expired = due_key(conn, expires_at="2020-01-01T00:00:00Z")
    left = [not_due, no_period, revoked, disabled, expired]
    before = [state(conn, key.id) for key in left]
    run_job()
    assert [state(conn, key.id)[:4] for key in left] == [row[:4] for row in before]
    assert all(emails(conn, key.id) == [] for key in left)


def test_a_key_rotated_by_hand_is_due_a_period_after_that(conn: psycopg.Connection) -> None:
    key = due_key(conn)
    conn.execute("UPDATE api_keys SET rotated_at = now() - interval '1 hour' WHERE id = %s",
                 (key.id,))  # fmt: skip
    run_job()
    assert emails(conn, key.id) == []
    conn.execute("UPDATE api_keys SET rotated_at = now() - interval '25 hours' WHERE id = %s",
                 (key.id,))  # fmt: skip
    run_job()
    assert len(emails(conn, key.id)) == 1
