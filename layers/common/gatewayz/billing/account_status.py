"""The account's subscription and trial (`GET /v1/subscription`, `GET /v1/trial`,
docs/api.md, billing), as the webhooks and the `trial_expiry` job left them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing.amounts import usd

if TYPE_CHECKING:
    from datetime import datetime

    from gatewayz.identity.principal import Principal

READ_SCOPES = ("billing:read",)
# The statuses of a subscription that still governs the account (one at most).
LIVE = ("trialing", "active", "past_due", "unpaid", "paused")

_SUBSCRIPTION = """
SELECT s.id, s.plan_id, p.name, s.status, s.current_period_start, s.current_period_end,
       s.cancel_at_period_end, s.canceled_at, s.created_at
  FROM subscriptions s JOIN plans p ON p.id = s.plan_id
 WHERE s.account_id = %s AND s.status = ANY(%s)
 ORDER BY s.created_at DESC LIMIT 1
"""

_TRIAL = """
SELECT a.trial_started_at, a.trial_ends_at, a.trial_converted_at, a.trial_expired_at,
       a.balance_nanos, a.plan_id,
       COALESCE((SELECT sum(t.amount_nanos) FROM credit_transactions t
                  WHERE t.account_id = a.id AND t.kind = 'trial'), 0),
       now()
  FROM accounts a WHERE a.id = %s
"""


def subscription(owner: Principal) -> dict[str, Any] | None:
    """The account's live subscription, or None."""
    row = db.execute(_SUBSCRIPTION, (owner.account_id, list(LIVE))).fetchone()
    if row is None:
        return None
    sub_id, plan_id, plan_name, status, start, end, at_end, canceled, created = row
    return {
        "id": str(sub_id),
        "object": "subscription",
        "plan": {"id": plan_id, "name": plan_name},
        "status": status,
        "current_period_start": _iso(start),
        "current_period_end": _iso(end),
        "cancel_at_period_end": at_end,
        "canceled_at": _iso(canceled),
        "created_at": _iso(created),
    }


def trial(owner: Principal) -> dict[str, Any]:
    """The account's trial: whether it runs now, when it started and ends, its credit,
    and when it was converted (a purchase) or expired.

    Raises:
        AccountNotFound: the account is gone.
    """
    row = db.execute(_TRIAL, (owner.account_id,)).fetchone()
    if row is None:
        raise errors.AccountNotFound("No such account.")
    started, ends, converted, expired, balance, plan_id, granted, now = row
    active = started is not None and converted is None and expired is None and ends > now
    remaining = min(max(int(balance), 0), int(granted)) if active else None
    return {
        "object": "trial",
        "active": active,
        "plan": plan_id,
        "started_at": _iso(started),
        "ends_at": _iso(ends),
        "credit_granted": usd(int(granted)),
        "credit_remaining": usd(remaining),
        "converted_at": _iso(converted),
        "expired_at": _iso(expired),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
