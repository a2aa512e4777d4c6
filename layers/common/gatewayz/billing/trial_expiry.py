"""The `trial_expiry` job (docs/operations.md, scheduled jobs): end trials that ran out.

An account on a trial plan whose `trial_ends_at` passed loses what is left of its trial
credit (the smaller of its balance and the trial grant; what it spent stays spent, and
credit held by requests in flight is not touched), moves to the free plan and gets the
`trial_ended` e-mail. An account that bought during its trial was converted (on
another plan, `trial_converted_at` set): it keeps its credit and never expires.

Each account ends in its own transaction, its row locked and the conditions checked
again under the lock; the debit's ledger reference `trial_expiry:<account>` is unique.
So overlapping runs end each trial once, with one debit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db
from gatewayz.billing import credits
from gatewayz.email import outbox
from gatewayz.identity import audit, auth

if TYPE_CHECKING:
    import psycopg

FREE_PLAN = "free"
BATCH = 100
MAX_BATCHES = 50  # the next run does the rest

_DUE = """
SELECT a.id FROM accounts a JOIN plans p ON p.id = a.plan_id
 WHERE p.kind = 'trial' AND a.trial_ends_at <= now()
   AND a.trial_expired_at IS NULL AND a.trial_converted_at IS NULL
 ORDER BY a.trial_ends_at
 LIMIT %s
   FOR UPDATE OF a SKIP LOCKED
"""
# The same conditions, under the row lock, with what the trial granted.
_LOCKED = """
SELECT a.balance_nanos, a.plan_id,
       coalesce((SELECT t.amount_nanos FROM credit_transactions t
                  WHERE t.account_id = a.id AND t.kind = 'trial'
                    AND t.external_ref = 'trial:' || a.id), 0)
  FROM accounts a JOIN plans p ON p.id = a.plan_id
 WHERE a.id = %s AND p.kind = 'trial' AND a.trial_ends_at <= now()
   AND a.trial_expired_at IS NULL AND a.trial_converted_at IS NULL
   FOR UPDATE OF a
"""


def run() -> dict[str, Any]:
    """End every trial that is due; a report of how many ended and the credit removed."""
    ended = removed = 0
    for _ in range(MAX_BATCHES):
        with db.transaction() as cur:
            due = [str(row[0]) for row in cur.execute(_DUE, (BATCH,)).fetchall()]
            for account_id in due:
                outcome = expire(cur, account_id)
                if outcome is not None:
                    ended += 1
                    removed += outcome
        for account_id in due:
            auth.announce(account_id)  # the plan changed: cached keys look again
        if len(due) < BATCH:
            break
    return {"trials_ended": ended, "removed_nanos": removed}


def expire(cur: psycopg.Cursor[Any], account_id: str) -> int | None:
    """End one account's trial inside the caller's transaction; the credit removed, or
    None when the trial is not due (converted, ended already, not on a trial plan)."""
    row = cur.execute(_LOCKED, (account_id,)).fetchone()
    if row is None:
        return None
    balance, trial_plan, granted = int(row[0]), row[1], int(row[2])
    unspent = max(min(balance, granted), 0)
    if unspent > 0:
        credits.post(
            cur, account_id=account_id, kind="trial_expiry", amount_nanos=-unspent,
            external_ref=f"trial_expiry:{account_id}", description="Unspent trial credit removed",
        )  # fmt: skip
    cur.execute(
        """UPDATE accounts SET plan_id = %s, trial_expired_at = now(), updated_at = now()
            WHERE id = %s""",
        (FREE_PLAN, account_id),
    )
    audit.record(
        cur, action="account.trial_end", target_type="account", target_id=account_id,
        account_id=account_id, actor_kind="system",
        before={"plan": trial_plan, "balance_nanos": balance},
        after={"plan": FREE_PLAN, "balance_nanos": balance - unspent, "removed_nanos": unspent},
    )  # fmt: skip
    outbox.queue(
        cur, account_id=account_id, template="trial_ended",
        subject="Your Gatewayz trial has ended",
        payload={"removed_nanos": unspent, "plan": FREE_PLAN},
        dedupe_key=f"trial_ended:{account_id}",
    )  # fmt: skip
    return unspent
