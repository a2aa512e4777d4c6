"""The `low_balance_alerts` job (docs/operations.md, scheduled jobs): the e-mails that
watch money, each sent once for what it reports.

- `low_balance`: the balance fell below the account's `low_balance_threshold_nanos`;
  once per crossing (`low_balance_notified_at` is set, and cleared again once the
  balance is back at or above the threshold).
- `trial_ending`: the trial ends within 24 hours; once per trial.
- `key_limit`: a key spent 80% or 100% of its `spend_limit_nanos` in its current
  window; once per key, window, limit and level.
- `spend_alert`: the month's usage (`month_spent_nanos`) passed one of the account's
  `spend_alert_thresholds_nanos`; once per threshold and month.
- `spend_limit_reached`: the month's usage reached `monthly_spend_limit_nanos`; once per
  month.

Every notice has a dedupe key naming what it reports, and queueing is `ON CONFLICT DO
NOTHING`, so overlapping runs queue each once. Months are calendar months in UTC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db
from gatewayz.email import outbox

if TYPE_CHECKING:
    import psycopg

TRIAL_WARNING = "24 hours"
KEY_LEVELS = (100, 80)  # percent of a key's limit; the highest one reached is reported

_LOW_BALANCE = """
UPDATE accounts SET low_balance_notified_at = now()
 WHERE low_balance_threshold_nanos IS NOT NULL AND low_balance_notified_at IS NULL
   AND balance_nanos < low_balance_threshold_nanos AND status = 'active'
RETURNING id, balance_nanos, low_balance_threshold_nanos, low_balance_notified_at
"""
_REARM = """
UPDATE accounts SET low_balance_notified_at = NULL
 WHERE low_balance_notified_at IS NOT NULL
   AND (low_balance_threshold_nanos IS NULL OR balance_nanos >= low_balance_threshold_nanos)
"""
_TRIAL_ENDING = """
SELECT a.id, a.trial_ends_at, a.balance_nanos FROM accounts a JOIN plans p ON p.id = a.plan_id
 WHERE p.kind = 'trial' AND a.status = 'active'
   AND a.trial_ends_at > now() AND a.trial_ends_at <= now() + %s::interval
   AND a.trial_expired_at IS NULL AND a.trial_converted_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM email_outbox o WHERE o.dedupe_key = 'trial_ending:' || a.id)
"""
_KEY_SPEND = """
SELECT k.id, k.account_id, k.name, k.spend_limit_nanos, s.spent, u.email,
       coalesce(key_limit_window_start(k.limit_reset, now()), k.spent_since) AS window_start
  FROM api_keys k
  JOIN users u ON u.id = k.user_id
  JOIN accounts a ON a.id = k.account_id AND a.status = 'active'
 CROSS JOIN LATERAL (SELECT key_spent_in_window(k.spent_nanos, k.spent_since, k.limit_reset)
                     AS spent) s
 WHERE k.spend_limit_nanos IS NOT NULL AND k.revoked_at IS NULL
   AND k.spent_nanos * 5 >= k.spend_limit_nanos * 4
   AND s.spent * 5 >= k.spend_limit_nanos * 4
"""
_MONTH = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')"
# Usage this month: nothing yet when the counter is from an earlier month.
_MONTH_SPENT = f"""
SELECT a.id, {_MONTH}, a.month_spent_nanos, a.spend_alert_thresholds_nanos,
       a.monthly_spend_limit_nanos
  FROM accounts a
 WHERE a.status = 'active' AND a.month_spent_nanos > 0
   AND a.month_spent_since >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
   AND (cardinality(a.spend_alert_thresholds_nanos) > 0 OR a.monthly_spend_limit_nanos IS NOT NULL)
"""


def run() -> dict[str, Any]:
    """Queue every alert that is due; how many of each were queued."""
    with db.transaction() as cur:
        report = {"low_balance": _low_balance(cur)}
    with db.transaction() as cur:
        report["trial_ending"] = _trial_ending(cur)
    with db.transaction() as cur:
        report["key_limit"] = _key_limits(cur)
    with db.transaction() as cur:
        report.update(_monthly(cur))
    return report


def _low_balance(cur: psycopg.Cursor[Any]) -> int:
    cur.execute(_REARM)
    queued = 0
    for account_id, balance, threshold, crossed_at in cur.execute(_LOW_BALANCE).fetchall():
        queued += outbox.queue(
            cur, account_id=str(account_id), template="low_balance",
            subject="Your Gatewayz balance is low",
            payload={"balance_nanos": int(balance), "threshold_nanos": int(threshold)},
            dedupe_key=f"low_balance:{account_id}:{crossed_at.isoformat()}",
        )  # fmt: skip
    return queued


def _trial_ending(cur: psycopg.Cursor[Any]) -> int:
    queued = 0
    for account_id, ends_at, balance in cur.execute(_TRIAL_ENDING, (TRIAL_WARNING,)).fetchall():
        queued += outbox.queue(
            cur, account_id=str(account_id), template="trial_ending",
            subject="Your Gatewayz trial ends tomorrow",
            payload={"trial_ends_at": ends_at.isoformat(), "balance_nanos": int(balance)},
            dedupe_key=f"trial_ending:{account_id}",
        )  # fmt: skip
    return queued


def _key_limits(cur: psycopg.Cursor[Any]) -> int:
    queued = 0
    for key_id, account_id, name, limit, spent, email, window_start in cur.execute(
        _KEY_SPEND
    ).fetchall():
        level = next(level for level in KEY_LEVELS if spent * 100 >= limit * level)
        window = window_start.isoformat()
        queued += outbox.queue(
            cur, account_id=str(account_id), template="key_limit",
            subject=f"Your API key \u201c{name}\u201d "
            + ("reached its spending limit" if level == 100 else "used 80% of its spending limit"),
            payload={"key_id": str(key_id), "key_name": name, "level": level,
                     "spent_nanos": int(spent), "limit_nanos": int(limit),
                     "window_start": window},
            dedupe_key=f"key_limit:{key_id}:{window}:{limit}:{level}",
            to_address=email,
        )  # fmt: skip
    return queued


def _monthly(cur: psycopg.Cursor[Any]) -> dict[str, int]:
    alerts = limits = 0
    for account_id, month, spent, thresholds, limit in cur.execute(_MONTH_SPENT).fetchall():
        for threshold in sorted(set(thresholds or [])):
            if spent >= threshold:
                alerts += outbox.queue(
                    cur, account_id=str(account_id), template="spend_alert",
                    subject=f"Your Gatewayz usage passed your alert for {month}",
                    payload={"threshold_nanos": int(threshold), "spent_nanos": int(spent),
                             "month": month},
                    dedupe_key=f"spend_alert:{account_id}:{month}:{threshold}",
                )  # fmt: skip
        if limit is not None and spent >= limit:
            limits += outbox.queue(
                cur, account_id=str(account_id), template="spend_limit_reached",
                subject=f"Your Gatewayz account reached its spending limit for {month}",
                payload={"limit_nanos": int(limit), "spent_nanos": int(spent), "month": month},
                dedupe_key=f"spend_limit_reached:{account_id}:{month}",
            )  # fmt: skip
    return {"spend_alert": alerts, "spend_limit_reached": limits}
