"""`gatewayz seed`: plans, credit packs and the starter model catalog from
infra/seed/*.toml.

Upserts by id, so it is safe to run again after editing a file; rows the files do not
mention are left alone. A model the file names is curated: `catalog_refresh` no longer
changes its metadata.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from gatewayz.billing.money import usd_to_cents, usd_to_nanos

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

_PLAN_SQL = """
INSERT INTO plans (id, name, description, kind, monthly_price_cents, included_credit_nanos,
                   trial_days, requests_per_minute, requests_per_day, tokens_per_minute,
                   concurrent_requests, max_keys, stripe_price_id, is_public, sort_order)
VALUES (%(id)s, %(name)s, %(description)s, %(kind)s, %(monthly_price_cents)s,
        %(included_credit_nanos)s, %(trial_days)s, %(requests_per_minute)s,
        %(requests_per_day)s, %(tokens_per_minute)s, %(concurrent_requests)s, %(max_keys)s,
        %(stripe_price_id)s, %(is_public)s, %(sort_order)s)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description, kind = EXCLUDED.kind,
    monthly_price_cents = EXCLUDED.monthly_price_cents,
    included_credit_nanos = EXCLUDED.included_credit_nanos, trial_days = EXCLUDED.trial_days,
    requests_per_minute = EXCLUDED.requests_per_minute,
    requests_per_day = EXCLUDED.requests_per_day, tokens_per_minute = EXCLUDED.tokens_per_minute,
    concurrent_requests = EXCLUDED.concurrent_requests, max_keys = EXCLUDED.max_keys,
    stripe_price_id = COALESCE(EXCLUDED.stripe_price_id, plans.stripe_price_id),
    is_public = EXCLUDED.is_public, sort_order = EXCLUDED.sort_order, updated_at = now()
"""

_PACK_SQL = """
INSERT INTO credit_packs (id, name, price_cents, credit_nanos, is_active, sort_order)
VALUES (%(id)s, %(name)s, %(price_cents)s, %(credit_nanos)s, %(is_active)s, %(sort_order)s)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
    credit_nanos = EXCLUDED.credit_nanos, is_active = EXCLUDED.is_active,
    sort_order = EXCLUDED.sort_order, updated_at = now()
"""

_MODEL_SQL = """
INSERT INTO models (id, name, description, context_length, max_output_tokens,
                    input_modalities, output_modalities, supported_parameters, max_image_tokens)
VALUES (%(id)s, %(name)s, %(description)s, %(context_length)s, %(max_output_tokens)s,
        %(input_modalities)s, %(output_modalities)s, %(supported_parameters)s,
        %(max_image_tokens)s)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description,
    context_length = EXCLUDED.context_length, max_output_tokens = EXCLUDED.max_output_tokens,
    input_modalities = EXCLUDED.input_modalities, output_modalities = EXCLUDED.output_modalities,
    supported_parameters = EXCLUDED.supported_parameters,
    max_image_tokens = EXCLUDED.max_image_tokens, listed_by = NULL, updated_at = now()
"""

_OFFER_SQL = """
INSERT INTO model_offers (model_id, provider, provider_model_id, priority, input_price,
                          cached_input_price, output_price, reasoning_price, image_price,
                          request_fees)
VALUES (%(model_id)s, %(provider)s, %(provider_model_id)s, %(priority)s, %(input_price)s,
        %(cached_input_price)s, %(output_price)s, %(reasoning_price)s, %(image_price)s,
        %(request_fees)s)
ON CONFLICT (model_id, provider) DO UPDATE SET
    provider_model_id = EXCLUDED.provider_model_id, priority = EXCLUDED.priority,
    input_price = EXCLUDED.input_price, cached_input_price = EXCLUDED.cached_input_price,
    output_price = EXCLUDED.output_price, reasoning_price = EXCLUDED.reasoning_price,
    image_price = EXCLUDED.image_price, request_fees = EXCLUDED.request_fees,
    updated_at = now()
"""

_PRICES = ("input_price", "cached_input_price", "output_price", "reasoning_price", "image_price")


def plan_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for `plans` from the parsed plans.toml."""
    rows = []
    for plan in data.get("plan", []):
        row = {
            "description": "",
            "trial_days": None,
            "stripe_price_id": None,
            "is_public": True,
            "sort_order": 0,
            **{k: v for k, v in plan.items() if not k.endswith("_usd")},
        }
        row["monthly_price_cents"] = usd_to_cents(plan.get("monthly_price_usd", "0"))
        row["included_credit_nanos"] = usd_to_nanos(plan.get("included_credit_usd", "0"))
        rows.append(row)
    return rows


def pack_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for `credit_packs` from the parsed plans.toml (its `[[pack]]` entries)."""
    return [
        {
            "id": pack["id"],
            "name": pack["name"],
            "price_cents": usd_to_cents(pack["price_usd"]),
            "credit_nanos": usd_to_nanos(pack["credit_usd"]),
            "is_active": pack.get("is_active", True),
            "sort_order": pack.get("sort_order", 0),
        }
        for pack in data.get("pack", [])
    ]


def catalog_rows(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for `models` and `model_offers` from the parsed catalog.toml."""
    models, offers = [], []
    for model in data.get("model", []):
        models.append(
            {
                "description": "",
                "max_output_tokens": None,
                "max_image_tokens": None,
                "input_modalities": ["text"],
                "output_modalities": ["text"],
                "supported_parameters": [],
                **{k: v for k, v in model.items() if k != "offers"},
            }
        )
        for offer in model.get("offers", []):
            row = {"model_id": model["id"], "priority": 100} | dict.fromkeys(_PRICES) | offer
            for price in _PRICES:
                if row[price] is not None:
                    row[price] = Decimal(row[price])  # strings in the file: never floats
            # USD per request of each fee-bearing feature, kept as strings in the JSON.
            fees = {name: str(Decimal(usd)) for name, usd in offer.get("request_fees", {}).items()}
            row["request_fees"] = Jsonb(fees)
            offers.append(row)
    return models, offers


def apply(conn: psycopg.Connection[Any], directory: Path) -> dict[str, int]:
    """Upsert plans.toml and catalog.toml from `directory`; return how many rows of each."""
    plans_file = tomllib.loads((directory / "plans.toml").read_text())
    plans, packs = plan_rows(plans_file), pack_rows(plans_file)
    models, offers = catalog_rows(tomllib.loads((directory / "catalog.toml").read_text()))
    with conn.transaction(), conn.cursor() as cur:
        # Price changes are kept with their source (migration 0021's trigger).
        cur.execute("SELECT set_config('gatewayz.price_source', 'seed', true)")
        cur.executemany(_PLAN_SQL, plans)
        if packs:
            cur.executemany(_PACK_SQL, packs)
        cur.executemany(_MODEL_SQL, models)
        cur.executemany(_OFFER_SQL, offers)
    return {"plans": len(plans), "packs": len(packs), "models": len(models), "offers": len(offers)}
