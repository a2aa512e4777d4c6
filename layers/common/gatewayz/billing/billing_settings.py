"""The account's spending controls (`/v1/billing/settings`, docs/api.md, billing): a
monthly spending limit, alerts at amounts of the month's usage, a low-balance alert,
and auto top-up.

The limit is enforced where credits are held (infra/migrations/0019); the alerts are
e-mailed by the `low_balance_alerts` job, and top-ups charged by the `auto_topup` job,
never in a request. Changing a threshold arms its alert (or top-up) again. Each change
writes its audit row in the same transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing import amounts, money
from gatewayz.billing.amounts import usd
from gatewayz.identity import audit, principal

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

READ_SCOPES = ("billing:read",)
WRITE_SCOPES = ("billing:write",)
MAX_ALERTS = 5
# A top-up is a card payment: the same bounds as a checkout's amount.
TOPUP_MIN_USD = 5
TOPUP_MAX_USD = 1000
FIELDS = ("monthly_spend_limit", "spend_alerts", "low_balance_threshold", "auto_top_up")

_READ = """
SELECT monthly_spend_limit_nanos,
       CASE WHEN month_spent_since < m.start THEN 0 ELSE month_spent_nanos END, m.start,
       spend_alert_thresholds_nanos, low_balance_threshold_nanos, auto_topup_threshold_nanos,
       auto_topup_amount_cents, stripe_payment_method_id IS NOT NULL
  FROM accounts,
       LATERAL (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') m(start)
 WHERE id = %s
"""


def get(owner: Principal) -> dict[str, Any]:
    """The caller's account's settings. Raises AccountNotFound if the account is gone."""
    with db.transaction() as cur:
        return _read(cur, owner.account_id)


def update(owner: Principal, body: Any, *, request: Request) -> dict[str, Any]:
    """Change the settings `body` names (null turns one off); the settings now.

    Raises:
        RoleDenied: 403, the caller is not the account's owner or an admin.
        InvalidRequest: not an object of known, valid settings (param named).
    """
    principal.require_manager(owner)
    changes = _parse(body)
    with db.transaction() as cur:
        before = _read(cur, owner.account_id, lock=True)
        cur.execute(
            f"UPDATE accounts SET {', '.join(f'{c} = %({c})s' for c in changes)},"
            " updated_at = now() WHERE id = %(account)s",
            {**changes, "account": owner.account_id},
        )
        after = _read(cur, owner.account_id)
        changed = [name for name in FIELDS if before[name] != after[name]]
        if changed:
            audit.record(
                cur, action="billing.settings.update", target_type="account",
                target_id=owner.account_id, account_id=owner.account_id, principal=owner,
                before={name: before[name] for name in changed},
                after={name: after[name] for name in changed}, request=request,
            )  # fmt: skip
    return after


def _parse(body: Any) -> dict[str, Any]:
    """The accounts columns a PATCH body sets; a threshold it sets arms its alert again."""
    if not isinstance(body, dict) or not body:
        raise errors.InvalidRequest(f"Send an object with any of {', '.join(FIELDS)}.")
    columns: dict[str, Any] = {}
    for name, value in body.items():
        if name == "monthly_spend_limit":
            columns["monthly_spend_limit_nanos"] = _optional(value, name, positive=True)
        elif name == "spend_alerts":
            columns["spend_alert_thresholds_nanos"] = _alerts(value)
        elif name == "low_balance_threshold":
            columns["low_balance_threshold_nanos"] = _optional(value, name)
            columns["low_balance_notified_at"] = None
        elif name == "auto_top_up":
            threshold, cents = _top_up(value)
            columns["auto_topup_threshold_nanos"] = threshold
            columns["auto_topup_amount_cents"] = cents
            columns["auto_topup_armed"] = True
        else:
            raise errors.InvalidRequest(f"{name} is not a billing setting.", param=name)
    return columns


def _optional(value: Any, param: str, *, positive: bool = False) -> int | None:
    return None if value is None else amounts.nanos(value, param, positive=positive)


def _alerts(value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ALERTS:
        raise errors.InvalidRequest(
            f"spend_alerts must be a list of at most {MAX_ALERTS} amounts of USD.",
            param="spend_alerts",
        )
    return sorted({amounts.nanos(item, "spend_alerts", positive=True) for item in value})


def _top_up(value: Any) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or set(value) != {"threshold", "amount"}:
        raise errors.InvalidRequest(
            "auto_top_up must be null or an object with threshold and amount (USD).",
            param="auto_top_up",
        )
    threshold = amounts.nanos(value["threshold"], "auto_top_up.threshold")
    amount = amounts.nanos(value["amount"], "auto_top_up.amount", positive=True, cents=True)
    if not TOPUP_MIN_USD * money.NANOS_PER_USD <= amount <= TOPUP_MAX_USD * money.NANOS_PER_USD:
        raise errors.InvalidRequest(
            f"auto_top_up.amount must be from {TOPUP_MIN_USD} to {TOPUP_MAX_USD} USD.",
            param="auto_top_up.amount",
        )
    return threshold, amount * 100 // money.NANOS_PER_USD


def _read(cur: psycopg.Cursor[Any], account_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = cur.execute(_READ + (" FOR UPDATE OF accounts" if lock else ""), (account_id,)).fetchone()
    if row is None:
        raise errors.AccountNotFound("No such account.")
    limit, spent, month_start, alerts, low, topup_at, topup_cents, card = row
    return {
        "object": "billing_settings",
        "monthly_spend_limit": usd(limit),
        "month_spent": usd(spent),
        "month_started_at": month_start.isoformat(),
        "spend_alerts": [usd(nanos) for nanos in alerts],
        "low_balance_threshold": usd(low),
        "auto_top_up": None
        if topup_at is None
        else {"threshold": usd(topup_at), "amount": int(topup_cents) / 100},
        "card_on_file": bool(card),
    }
