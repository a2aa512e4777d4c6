"""The `idempotency_records` table (docs/api.md, idempotent retries): claim a key, keep
the first answer, give the key back, sweep what expired.

A claim is one round trip: an insert that, on conflict, takes over only a row past its
expiry or a `running` row past its lease (its request crashed), and in the same
statement reads the row it could not take. Each claim carries its own uuid, so a request
that outlived its lease cannot overwrite or delete what the next one stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from gatewayz import db
from gatewayz.record import record

_CLAIM = """
WITH claimed AS (
    INSERT INTO idempotency_records AS r
           (account_id, key, request_hash, claim, lease_until, expires_at)
    VALUES (%(account)s, %(key)s, %(hash)s, %(claim)s,
            now() + make_interval(secs => %(lease_s)s), now() + make_interval(secs => %(ttl_s)s))
    ON CONFLICT (account_id, key) DO UPDATE
       SET request_hash = EXCLUDED.request_hash, claim = EXCLUDED.claim, status = 'running',
           response_status = NULL, response_headers = '{}'::jsonb, response_body = NULL,
           created_at = now(), lease_until = EXCLUDED.lease_until,
           expires_at = EXCLUDED.expires_at
     WHERE r.expires_at <= now() OR (r.status = 'running' AND r.lease_until <= now())
    RETURNING claim
)
SELECT true, NULL::bytea, NULL::text, NULL::integer, NULL::jsonb, NULL::bytea FROM claimed
UNION ALL
SELECT false, request_hash, status, response_status, response_headers, response_body
  FROM idempotency_records
 WHERE account_id = %(account)s AND key = %(key)s AND NOT EXISTS (SELECT 1 FROM claimed)
"""


@record
class Claim:
    """This request owns the key: it runs, then stores its answer or releases the key."""

    account_id: str
    key: str
    claim: uuid.UUID


@record
class Existing:
    """Another request holds the key: running, or completed with its answer."""

    request_hash: bytes
    completed: bool
    status: int | None
    headers: dict[str, str]
    body: bytes | None


def claim(
    account_id: str, key: str, request_hash: bytes, *, lease_s: int, ttl_s: int
) -> Claim | Existing:
    """Claim `key` for this request, or the record of the request that holds it."""
    params: dict[str, Any] = {
        "account": account_id,
        "key": key,
        "hash": request_hash,
        "claim": uuid.uuid4(),
        "lease_s": lease_s,
        "ttl_s": ttl_s,
    }
    # The row that made the insert conflict can be newer than the statement's snapshot
    # (inserted meanwhile) or gone by the time we look (its request failed): try again.
    for _ in range(3):
        row = db.execute(_CLAIM, params).fetchone()
        if row is None:
            continue
        owned, hash_, status, response_status, headers, body = row
        if owned:
            return Claim(account_id, key, params["claim"])
        return Existing(
            request_hash=bytes(hash_),
            completed=status == "completed",
            status=response_status,
            headers=dict(headers or {}),
            body=bytes(body) if body is not None else None,
        )
    # Three races in a row: treat it as a request still running (the client retries).
    return Existing(request_hash, completed=False, status=None, headers={}, body=None)


def complete(held: Claim, status: int, headers: dict[str, str], body: bytes | None) -> None:
    """Keep the answer (None: too large to keep) for replays until the key expires."""
    db.execute(
        """UPDATE idempotency_records
              SET status = 'completed', response_status = %s, response_headers = %s,
                  response_body = %s
            WHERE account_id = %s AND key = %s AND claim = %s""",
        (status, Jsonb(headers), body, held.account_id, held.key, held.claim),
    )


def release(held: Claim) -> None:
    """Give the key back: the request failed before anything was charged."""
    db.execute(
        "DELETE FROM idempotency_records WHERE account_id = %s AND key = %s AND claim = %s",
        (held.account_id, held.key, held.claim),
    )


def sweep() -> int:
    """Delete every expired record and every running one past its lease; how many."""
    cur = db.execute(
        """DELETE FROM idempotency_records
            WHERE expires_at <= now() OR (status = 'running' AND lease_until <= now())"""
    )
    return cur.rowcount
