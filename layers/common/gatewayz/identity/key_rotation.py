"""Scheduled key rotation: keys with a `rotation_period`
get a new secret when it is due; the secret in use keeps working for a day.

Nobody sees the secret the job makes: the key's user gets an e-mail saying the old
secret ends in 24 hours and that a secret they can see comes from rotating the key
through the API (`POST /v1/keys/{id}/rotate`) or from a new key. The job is idempotent:
a rotated key is not due again until its next period, each key rotates in its own
transaction with its audit row and its e-mail, and the e-mail's dedupe key is the
rotation that was due, so a rerun queues nothing twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb

from gatewayz import config, db
from gatewayz.identity import audit, auth, keys

GRACE = timedelta(hours=24)
BATCH = 100
MAX_BATCHES = 50  # a run does at most this many batches; the next run does the rest

_DUE = """
SELECT k.id, k.account_id, k.environment, k.name, k.prefix, k.last4, u.email,
       coalesce(k.rotated_at, k.created_at) + k.rotation_period AS due_at
  FROM api_keys k JOIN users u ON u.id = k.user_id
 WHERE k.rotation_period IS NOT NULL AND k.revoked_at IS NULL AND NOT k.disabled
   AND (k.expires_at IS NULL OR k.expires_at > now())
   AND coalesce(k.rotated_at, k.created_at) + k.rotation_period <= now()
 ORDER BY due_at
 LIMIT %s
   FOR UPDATE OF k SKIP LOCKED
"""


def run() -> dict[str, Any]:
    """Rotate every key that is due; a report of how many were rotated and e-mailed."""
    rotated = emailed = 0
    for _ in range(MAX_BATCHES):
        accounts: set[str] = set()
        with db.transaction() as cur:
            due = cur.execute(_DUE, (BATCH,)).fetchall()
            for row in due:
                emailed += _rotate(cur, row)
                accounts.add(str(row[1]))
        rotated += len(due)
        for account_id in accounts:
            auth.announce(account_id)
        if len(due) < BATCH:
            break
    return {"rotated": rotated, "emails_queued": emailed}


def _rotate(cur: Any, row: tuple[Any, ...]) -> int:
    """Rotate one key, audit it and queue its e-mail; 1 if the e-mail was new."""
    key_id, account_id, environment, name, old_prefix, old_last4, email, due_at = row
    new = keys.rotate(cur, str(key_id), environment=environment,
                      pepper=config.key_hash_secret(), grace=GRACE)  # fmt: skip
    audit.record(
        cur, action="key.rotate", target_type="api_key", target_id=str(key_id),
        account_id=str(account_id), actor_kind="system",
        before={"prefix": old_prefix, "last4": old_last4},
        after={"prefix": new.prefix, "last4": new.last4, "grace_period_hours": 24,
               "scheduled": True},
    )  # fmt: skip
    queued = cur.execute(
        """INSERT INTO email_outbox (account_id, to_address, template, subject, payload,
                                     dedupe_key)
           VALUES (%s, %s, 'key_rotated', %s, %s, %s)
           ON CONFLICT (dedupe_key) DO NOTHING""",
        (
            account_id,
            email,
            f"Your API key \u201c{name}\u201d was rotated",
            Jsonb(
                {
                    "key_id": str(key_id),
                    "key_name": name,
                    # The secret the user has (the old one), never the new one.
                    "prefix": old_prefix,
                    "last4": old_last4,
                    "old_secret_expires_in_hours": 24,
                    "next_step": (
                        f"Rotate the key with POST /v1/keys/{key_id}/rotate (the response "
                        "shows its new secret once), or create a new key with POST /v1/keys, "
                        "and use it before the old secret stops working."
                    ),
                }
            ),
            f"key_rotated:{key_id}:{due_at.isoformat()}",
        ),
    ).rowcount
    return int(queued)
