"""Plans and credit packs as customers see them (`GET /v1/plans`, docs/api.md, billing).

A plan sets an account's limits and, for a subscription, its monthly price and the
credit each paid month grants; a trial grants its credit once. A credit pack is a
fixed amount of credit a checkout can buy by name (`infra/seed/plans.toml`).
"""

from __future__ import annotations

from typing import Any

from gatewayz import db
from gatewayz.billing.amounts import usd
from gatewayz.identity import keys

# Any valid key or session may read the plans: any one scope will do.
READ_SCOPES = keys.SCOPES

# Every column a plan view shows, in this order (plan_admin.py shows the same, and more).
COLUMNS = (
    "id, name, description, kind, monthly_price_cents, included_credit_nanos, trial_days,"
    " requests_per_minute, requests_per_day, tokens_per_minute, concurrent_requests,"
    " max_keys, stripe_price_id, is_public, sort_order, created_at, updated_at"
)
LIMITS = (
    "requests_per_minute",
    "requests_per_day",
    "tokens_per_minute",
    "concurrent_requests",
    "max_keys",
)


def catalog() -> dict[str, Any]:
    """The public plans and the active credit packs, each in display order."""
    plans = db.execute(
        f"SELECT {COLUMNS} FROM plans WHERE is_public ORDER BY sort_order, id"
    ).fetchall()
    packs = db.execute(
        """SELECT id, name, price_cents, credit_nanos FROM credit_packs
            WHERE is_active ORDER BY sort_order, price_cents, id"""
    ).fetchall()
    return {
        "object": "list",
        "data": [shape(row) for row in plans],
        "packs": [_pack(row) for row in packs],
    }


def shape(row: tuple[Any, ...]) -> dict[str, Any]:
    """A plan row (selected as COLUMNS) as the API shows it."""
    (plan_id, name, description, kind, price_cents, credit, trial_days, *limits,
     stripe_price_id, _public, _order, _created, _updated) = row  # fmt: skip
    return {
        "id": plan_id,
        "object": "plan",
        "name": name,
        "description": description,
        "kind": kind,
        "monthly_price": int(price_cents) / 100,
        "included_credit": usd(credit),
        "trial_days": trial_days,
        "limits": dict(zip(LIMITS, (int(v) for v in limits), strict=True)),
        # A subscription plan can be bought once it has a Stripe price.
        "purchasable": kind == "subscription" and stripe_price_id is not None,
    }


def _pack(row: tuple[Any, ...]) -> dict[str, Any]:
    pack_id, name, price_cents, credit = row
    return {
        "id": pack_id,
        "object": "credit_pack",
        "name": name,
        "price": int(price_cents) / 100,
        "credit": usd(credit),
    }
