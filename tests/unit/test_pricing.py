"""Costs in nano-dollars: exact, class by class, never rounded down."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

import pytest

from gatewayz.billing.pricing import (
    Price,
    Usage,
    cost_nanos,
    hold_nanos,
    max_tokens_affordable,
    token_cost_nanos,
)

GPT_4O_MINI = Price(Decimal("0.15"), Decimal("0.60"), cached_input=Decimal("0.075"))


def test_a_token_at_a_price_per_million() -> None:
    # $0.15 per million tokens is 150 nanos per token.
    assert token_cost_nanos(1, Decimal("0.15")) == 150
    assert token_cost_nanos(1_000_000, Decimal("0.15")) == 150_000_000
    # A fraction of a nano is rounded up, never down: $0.0001/M is 0.1 nano per token.
    assert token_cost_nanos(1, Decimal("0.0001")) == 1
    assert token_cost_nanos(11, Decimal("0.0001")) == 2
    assert token_cost_nanos(0, Decimal("5")) == 0


def test_a_token_cost_is_the_exact_ceiling_at_any_size() -> None:
    # Every digit of price and count counts: no rounding to a Decimal context's 28 digits.
    rng = random.Random(11)
    for _ in range(2000):
        price = Decimal(rng.randrange(1, 10**12)).scaleb(-rng.randrange(0, 12))
        tokens = rng.randrange(1, 10 ** rng.randrange(1, 30))
        exact = Fraction(tokens) * Fraction(price) * 1000
        assert token_cost_nanos(tokens, price) == math.ceil(exact)
    assert token_cost_nanos(10**25 + 1, Decimal("0.0000000000001")) == 10**15 + 1


def test_the_affordable_output_is_the_most_a_budget_pays_for() -> None:
    rng = random.Random(12)
    for _ in range(2000):
        out = Decimal(rng.randrange(1, 10**9)).scaleb(-rng.randrange(0, 9))
        budget = rng.randrange(0, 10 ** rng.randrange(1, 20))
        tokens = max_tokens_affordable(Price(Decimal(0), out), budget, prompt_tokens=0)
        assert token_cost_nanos(tokens, out) <= budget < token_cost_nanos(tokens + 1, out)


def test_each_class_at_its_own_price() -> None:
    usage = Usage(input_tokens=1000, cached_input_tokens=2000, output_tokens=300)
    assert cost_nanos(GPT_4O_MINI, usage) == 1000 * 150 + 2000 * 75 + 300 * 600


def test_cached_and_reasoning_default_to_input_and_output_prices() -> None:
    price = Price(Decimal("1"), Decimal("2"))
    usage = Usage(cached_input_tokens=10, reasoning_tokens=5)
    assert cost_nanos(price, usage) == 10 * 1000 + 5 * 2000


def test_a_class_not_used_needs_no_price() -> None:
    # An embedding model has no output price; using none of it costs only the input.
    assert cost_nanos(Price(Decimal("1"), None), Usage(input_tokens=5)) == 5 * 1_000


def test_images_at_their_price_each_rounded_up_to_a_nano() -> None:
    # $0.04 an image is 40,000,000 nanos; added to the tokens' cost.
    price = Price(Decimal("1"), Decimal("2"), image=Decimal("0.04"))
    assert cost_nanos(price, Usage(images=3)) == 3 * 40_000_000
    assert cost_nanos(price, Usage(input_tokens=10, images=2)) == 10 * 1_000 + 2 * 40_000_000
    # A price of 1.5 nanos an image: one image costs 2 nanos, never 1.
    assert cost_nanos(Price(None, None, image=Decimal("0.0000000015")), Usage(images=1)) == 2


def test_reasoning_has_its_own_price_when_it_is_published() -> None:
    # $1 in, $2 out, $5 a reasoning token: 1,000, 2,000 and 5,000 nanos a token.
    price = Price(Decimal("1"), Decimal("2"), reasoning=Decimal("5"))
    usage = Usage(input_tokens=7, output_tokens=10, reasoning_tokens=3)
    assert cost_nanos(price, usage) == 7 * 1_000 + 10 * 2_000 + 3 * 5_000


@pytest.mark.parametrize(
    ("price", "usage", "missing"),
    [
        (GPT_4O_MINI, Usage(images=1), "image"),
        (Price(None, Decimal("1")), Usage(input_tokens=1), "input"),
        (Price(None, Decimal("1")), Usage(cached_input_tokens=1), "cached input"),
        (Price(Decimal("1"), None), Usage(output_tokens=1), "output"),
        (Price(Decimal("1"), None), Usage(reasoning_tokens=1), "reasoning"),
    ],
)
def test_usage_of_an_unpriced_class_is_refused_not_free(
    price: Price, usage: Usage, missing: str
) -> None:
    with pytest.raises(ValueError, match=f"^no {missing} price$"):
        cost_nanos(price, usage)


def test_openai_usage_splits_into_disjoint_classes() -> None:
    usage = Usage.from_openai(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 20},
        }
    )
    assert usage == Usage(
        input_tokens=70, cached_input_tokens=30, output_tokens=30, reasoning_tokens=20
    )
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 50)


@pytest.mark.parametrize("bad", [None, "x", {"prompt_tokens": -5}, {"prompt_tokens": True}])
def test_malformed_usage_counts_nothing(bad: object) -> None:
    assert Usage.from_openai(bad) == Usage()  # type: ignore[arg-type]


def test_the_hold_covers_the_worst_case_and_affordability_inverts_it() -> None:
    price = Price(Decimal("1"), Decimal("2"), reasoning=Decimal("3"))
    held = hold_nanos(price, prompt_tokens=100, output_tokens=50)
    assert held == 100 * 1000 + 50 * 3000
    assert max_tokens_affordable(price, held, 100) == 50
    assert max_tokens_affordable(price, held - 1, 100) == 49
    assert max_tokens_affordable(price, 100 * 1000, 100) == 0
    assert max_tokens_affordable(price, 100 * 1000 - 1, 100) == 0  # not even the prompt
    # Free output never runs out: the largest max_tokens a 32-bit field holds.
    free = Price(Decimal("0"), Decimal("0"))
    assert max_tokens_affordable(free, 0, 100) == 2**31 - 1
