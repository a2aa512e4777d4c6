"""Coupons and redemptions as the API shows them (docs/api.md, coupons): amounts in USD,
times in ISO 8601."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz.billing import amounts, money

if TYPE_CHECKING:
    from datetime import datetime

COUPON_COLUMNS = """c.id, c.code, c.description, c.kind, c.amount_nanos, c.percent_off,
c.max_redemptions, c.max_per_user, c.redemption_count, c.valid_from, c.expires_at,
c.user_id, c.email, c.is_active, c.created_at, c.updated_at"""

_CENT = money.NANOS_PER_USD // 100

REDEMPTION_COLUMNS = """r.id, r.coupon_id, c.code, r.kind, r.status, r.amount_nanos,
r.percent_off, r.user_id, r.payment_id, p.discount_cents, r.created_at, r.consumed_at"""
# The redemption with its coupon's code and, for a consumed percent coupon, its payment.
REDEMPTION_FROM = """coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id
LEFT JOIN payments p ON p.id = r.payment_id AND r.status = 'consumed'"""


def coupon(row: tuple[Any, ...]) -> dict[str, Any]:
    """A coupon as operators see it."""
    (coupon_id, code, description, kind, amount_nanos, percent_off, max_redemptions,
     max_per_user, count, valid_from, valid_until, user_id, email, is_active, created_at,
     updated_at) = row  # fmt: skip
    return {
        "id": str(coupon_id),
        "object": "coupon",
        "code": code,
        "description": description,
        "kind": kind,
        "amount": amounts.usd(amount_nanos),
        "percent_off": percent_off,
        "max_redemptions": max_redemptions,
        "max_per_user": max_per_user,
        "redemption_count": count,
        "valid_from": _time(valid_from),
        "valid_until": _time(valid_until),
        "user_id": None if user_id is None else str(user_id),
        "email": email,
        "is_active": is_active,
        "created_at": _time(created_at),
        "updated_at": _time(updated_at),
    }


def redemption(row: tuple[Any, ...]) -> dict[str, Any]:
    """A redemption as its account sees it: what it granted, or the discount waiting
    for (`attached`) or given to (`consumed`) a checkout."""
    (redemption_id, coupon_id, code, kind, status, amount_nanos, percent_off, user_id,
     payment_id, discount_cents, created_at, consumed_at) = row  # fmt: skip
    return {
        "id": str(redemption_id),
        "object": "coupon_redemption",
        "coupon_id": str(coupon_id),
        "code": code,
        "kind": kind,
        "status": status,
        "amount": amounts.usd(amount_nanos),
        "percent_off": percent_off,
        "discount": amounts.usd(None if discount_cents is None else discount_cents * _CENT),
        "payment_id": None if payment_id is None or status != "consumed" else str(payment_id),
        "user_id": None if user_id is None else str(user_id),
        "created_at": _time(created_at),
        "consumed_at": _time(consumed_at),
    }


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
