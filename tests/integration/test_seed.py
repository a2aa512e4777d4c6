"""infra/seed through `gatewayz seed`: plans and a priced catalog for every provider."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from typing import TYPE_CHECKING

from gatewayz import seed
from tests.pg import ROOT

if TYPE_CHECKING:
    import psycopg

PROVIDERS = {"openrouter", "portkey", "featherless", "chutes"}


def test_plans_have_their_prices_credits_and_limits(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT id, kind, monthly_price_cents, included_credit_nanos, trial_days FROM plans"
    ).fetchall()
    plans = {row[0]: row[1:] for row in rows}
    assert plans["trial"] == ("trial", 0, 10_000_000_000, 3)
    assert plans["dev"][:2] == ("subscription", 2_900)
    assert plans["team"][:2] == ("subscription", 9_900)
    assert plans["free"][0] == "free"
    assert plans["payg"][0] == "payg"
    limits = conn.execute(
        "SELECT count(*) FROM plans WHERE requests_per_minute > 0 AND requests_per_day > 0 "
        "AND tokens_per_minute > 0 AND concurrent_requests > 0"
    ).fetchone()
    assert limits == (len(plans),)


def test_every_provider_offers_priced_models(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT provider, count(*) FROM model_offers "
        "WHERE input_price IS NOT NULL AND output_price IS NOT NULL GROUP BY provider"
    ).fetchall()
    assert {provider for provider, _ in rows} == PROVIDERS
    price = conn.execute(
        "SELECT input_price, output_price FROM model_offers "
        "WHERE model_id = 'openai/gpt-4o-mini' AND provider = 'openrouter'"
    ).fetchone()
    assert price == (Decimal("0.15"), Decimal("0.60"))


def test_seeding_again_changes_nothing(conn: psycopg.Connection) -> None:
    def snapshot() -> list[tuple[object, ...]]:
        return conn.execute(
            "SELECT model_id, provider, input_price, output_price, priority FROM model_offers "
            "ORDER BY 1, 2"
        ).fetchall()

    before = snapshot()
    counts = seed.apply(conn, ROOT / "infra" / "seed")
    assert snapshot() == before
    # Counted from the file itself, not through the seeder's own reading of it.
    catalog = tomllib.loads((ROOT / "infra/seed/catalog.toml").read_text())
    assert counts["offers"] == sum(len(model["offers"]) for model in catalog["model"]) > 0


def test_prices_are_read_as_exact_decimals() -> None:
    _, offers = seed.catalog_rows(
        {
            "model": [
                {
                    "id": "a/b",
                    "offers": [{"provider": "x", "input_price": "0.1", "output_price": "0.3"}],
                }
            ]
        }
    )
    assert offers[0]["input_price"] == Decimal("0.1")
    assert offers[0]["cached_input_price"] is None
