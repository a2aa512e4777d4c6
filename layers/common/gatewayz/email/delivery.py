"""The `email_outbox` job (docs/operations.md, e-mail): send what the outbox holds.

A run claims due rows (`pending`, `send_after` passed) with `FOR UPDATE SKIP LOCKED`
and marks them `sending` with a lease (`send_after` moved ahead), in a transaction of
its own, so an overlapping run skips them and a crashed run's rows come back when the
lease ends. Each row is rendered once (the bodies are kept on the row), sent with the
row id as Resend's idempotency key, then marked `sent`. A failure puts the row back
with an exponential backoff and the error (trimmed), and after `MAX_ATTEMPTS` marks it
`failed`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gatewayz import db
from gatewayz.email import sender as senders
from gatewayz.email import templates
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    from gatewayz.email.sender import Sender

BATCH = 20
LEASE = timedelta(minutes=10)  # longer than a batch can take (20 sends x 10 s timeout)
RUN_BUDGET_S = 120.0  # no new batch after this; the next run (a minute later) goes on
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)

_CLAIM = """
UPDATE email_outbox o
   SET status = 'sending', attempts = o.attempts + 1, send_after = now() + %s
 WHERE o.id IN (SELECT id FROM email_outbox
                 WHERE status IN ('pending', 'sending') AND send_after <= now()
                   AND attempts < %s
                 ORDER BY send_after LIMIT %s
                   FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.to_address, o.template, o.subject, o.payload, o.html, o.text_body,
          o.created_at, o.attempts
"""
# A row whose every attempt ended in a crash (its lease ran out each time) stops here.
_ABANDON = """
UPDATE email_outbox SET status = 'failed', last_error = 'no answer after every attempt'
 WHERE status = 'sending' AND send_after <= now() AND attempts >= %s
"""


def backoff(attempts: int) -> timedelta:
    """How long to wait after failed attempt number `attempts` (1, 2, ...)."""
    doublings: int = min(max(attempts - 1, 0), 16)
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


def run(sender: Sender | None = None) -> dict[str, Any]:
    """Send every due e-mail; counts of `sent`, `retrying` and `failed` rows.

    Raises:
        MissingConfiguration: no sender given and none configured (see sender.py).
    """
    sender = sender or senders.from_settings()
    counts = {"sent": 0, "retrying": 0, "failed": db.execute(_ABANDON, (MAX_ATTEMPTS,)).rowcount}
    started = time.monotonic()
    while time.monotonic() - started < RUN_BUDGET_S:
        with db.transaction() as cur:
            rows = cur.execute(_CLAIM, (LEASE, MAX_ATTEMPTS, BATCH)).fetchall()
        for row in rows:
            counts[_deliver(sender, row)] += 1
        if len(rows) < BATCH:
            break
    return {**counts, "sender": sender.name}


def _deliver(sender: Sender, row: tuple[Any, ...]) -> str:
    """Render, send and record one claimed row; which count it adds to."""
    row_id, to, template, subject, payload, html, text, created_at, attempts = row
    row_id = str(row_id)
    if html is None or text is None:
        try:
            rendered = templates.render(template, subject, payload)
        except ValueError as exc:
            return _record_failure(row_id, attempts, senders.SendFailed(str(exc), retryable=False))
        html, text = rendered.html, rendered.text
        db.execute(
            "UPDATE email_outbox SET html = %s, text_body = %s WHERE id = %s",
            (html, text, row_id),
        )
    message = senders.Message(row_id, to, subject, html, text, template, created_at)
    try:
        provider_id = sender.send(message)
    except senders.SendFailed as exc:
        return _record_failure(row_id, attempts, exc)
    db.execute(
        """UPDATE email_outbox
              SET status = 'sent', sent_at = now(), provider_message_id = %s, last_error = NULL
            WHERE id = %s AND status = 'sending'""",
        (provider_id, row_id),
    )
    return "sent"


def _record_failure(row_id: str, attempts: int, exc: senders.SendFailed) -> str:
    final = not exc.retryable or attempts >= MAX_ATTEMPTS
    db.execute(
        """UPDATE email_outbox
              SET status = %s, last_error = %s, send_after = now() + %s
            WHERE id = %s AND status = 'sending'""",
        ("failed" if final else "pending", str(exc), backoff(attempts), row_id),
    )
    get_logger().warning(
        "e-mail not sent",
        extra={"outbox_id": row_id, "attempts": attempts, "final": final, "error": str(exc)},
    )
    return "failed" if final else "retrying"
