"""API keys as the API shows them: settings, limits and usage, never a secret.

Usage is the key's cost from `usage_records`, in all (`usage`) and since the start of
the UTC day, week (Monday) and month. `limit_remaining` is what the spending limit
leaves in its current window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from gatewayz.billing import money

if TYPE_CHECKING:
    from datetime import datetime

    import psycopg

    from gatewayz.identity.auth import Caller

_SELECT = """
SELECT k.id, k.user_id, k.name, k.environment, k.prefix, k.last4, k.scopes, k.allowed_models,
       k.allowed_cidrs::text[] AS allowed_cidrs, k.allowed_referers, k.expires_at,
       k.spend_limit_nanos, k.limit_reset,
       key_spent_in_window(k.spent_nanos, k.spent_since, k.limit_reset) AS spent_nanos,
       k.requests_per_minute, k.requests_per_day, k.tokens_per_minute, k.concurrent_requests,
       k.limits_set_by_admin, k.rotation_period, k.disabled, k.created_at, k.last_used_at,
       k.revoked_at, k.rotated_at, u.total, u.daily, u.weekly, u.monthly
  FROM api_keys k
  CROSS JOIN LATERAL (
      SELECT coalesce(sum(r.cost_nanos), 0) AS total,
             coalesce(sum(r.cost_nanos) FILTER (
                 WHERE r.created_at >= key_limit_window_start('daily', now())), 0) AS daily,
             coalesce(sum(r.cost_nanos) FILTER (
                 WHERE r.created_at >= key_limit_window_start('weekly', now())), 0) AS weekly,
             coalesce(sum(r.cost_nanos) FILTER (
                 WHERE r.created_at >= key_limit_window_start('monthly', now())), 0) AS monthly
        FROM usage_records r WHERE r.api_key_id = k.id) u
"""
# The settings a client set, by API name, as `shape` shows them (audit rows hold these).
SETTINGS = (
    "name", "environment", "scopes", "allowed_models", "allowed_cidrs", "allowed_referers",
    "expires_at", "limit", "limit_reset", "requests_per_minute", "requests_per_day",
    "tokens_per_minute", "concurrent_requests", "limits_set_by_admin", "rotation_period_days",
    "disabled", "revoked_at",
)  # fmt: skip
# What `GET /v1/key` shows of the key object (OpenRouter's fields, and a few of ours).
_CURRENT = (
    "id", "prefix", "last4", "environment", "scopes", "limit", "limit_remaining", "limit_reset",
    "usage", "usage_daily", "usage_weekly", "usage_monthly", "expires_at", "disabled",
)  # fmt: skip


def select(
    conn: psycopg.Connection[Any],
    where: sql.Composable,
    params: tuple[Any, ...],
    *,
    order: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Keys matching `where` (over `api_keys k`), as rows by column name."""
    from psycopg.rows import dict_row

    query = sql.SQL(_SELECT) + sql.SQL(" WHERE ") + where
    if order:
        query += sql.SQL(" ORDER BY k.created_at DESC, k.id DESC")
    if limit is not None:
        query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
    with conn.cursor(row_factory=dict_row) as rows:
        return rows.execute(query, params).fetchall()


def shape(row: dict[str, Any]) -> dict[str, Any]:
    """The key object of the API."""
    limit = row["spend_limit_nanos"]
    period = row["rotation_period"]
    return {
        "id": str(row["id"]),
        "object": "api_key",
        "user_id": str(row["user_id"]),
        "name": row["name"],
        "environment": row["environment"],
        "prefix": row["prefix"],
        "last4": row["last4"],
        "scopes": list(row["scopes"]),
        "allowed_models": row["allowed_models"],
        "allowed_cidrs": row["allowed_cidrs"],
        "allowed_referers": row["allowed_referers"],
        "expires_at": _time(row["expires_at"]),
        "limit": _usd(limit),
        "limit_reset": row["limit_reset"],
        "limit_remaining": None if limit is None else _usd(max(limit - row["spent_nanos"], 0)),
        "requests_per_minute": row["requests_per_minute"],
        "requests_per_day": row["requests_per_day"],
        "tokens_per_minute": row["tokens_per_minute"],
        "concurrent_requests": row["concurrent_requests"],
        "limits_set_by_admin": row["limits_set_by_admin"],
        "rotation_period_days": None if period is None else period.days,
        "disabled": row["disabled"],
        "usage": _usd(row["total"]),
        "usage_daily": _usd(row["daily"]),
        "usage_weekly": _usd(row["weekly"]),
        "usage_monthly": _usd(row["monthly"]),
        "created_at": _time(row["created_at"]),
        "last_used_at": _time(row["last_used_at"]),
        "rotated_at": _time(row["rotated_at"]),
        "revoked_at": _time(row["revoked_at"]),
    }


def settings(row: dict[str, Any]) -> dict[str, Any]:
    """What an audit row keeps of a key: its settings as the API shows them."""
    shown = shape(row)
    return {name: shown[name] for name in SETTINGS}


def current(row: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """`GET /v1/key`: OpenRouter's fields for the calling key, its scopes, and the rate
    limits that apply to it (its own where set, else its plan's)."""
    shown = shape(row)
    limits = caller.limits
    return {
        "label": shown["name"],
        **{name: shown[name] for name in _CURRENT},
        "rate_limits": {
            "requests_per_minute": limits.key_requests_per_minute or limits.requests_per_minute,
            "requests_per_day": limits.key_requests_per_day or limits.requests_per_day,
            "tokens_per_minute": limits.key_tokens_per_minute or limits.tokens_per_minute,
            "concurrent_requests": limits.key_concurrent_requests or limits.concurrent_requests,
        },
    }


def _usd(nanos: int | None) -> float | None:
    return None if nanos is None else float(money.nanos_to_usd(int(nanos)))


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
