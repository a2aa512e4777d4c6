"""Prices and costs (docs/architecture.md).

An offer is one provider serving one model at published prices (USD per million tokens,
per image for images, and per request for upstream fees that are not tokens, such as web
search). Cost in nanos = ceil(tokens * price_per_million * 1000), summed per token class,
plus the fees of the features a request asked for. A missing price means "not offered":
never free by accident.
"""

from __future__ import annotations

import functools
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Iterable

# nanos per token = USD per million tokens * 1e9 / 1e6


@record
class Price:
    """Published prices: USD per million tokens by class, USD per image."""

    input: Decimal | None
    output: Decimal | None
    cached_input: Decimal | None = None  # None: charged as input
    reasoning: Decimal | None = None  # None: charged as output
    image: Decimal | None = None
    # USD per request of each fee-bearing feature the offer prices ("web_search": 0.02).
    fees: tuple[tuple[str, Decimal], ...] = ()

    @property
    def serves_text(self) -> bool:
        return self.input is not None and self.output is not None

    def prices(self, feature: str) -> bool:
        """Whether the offer has a price for `feature`."""
        return any(name == feature for name, _ in self.fees)

    def fee_nanos(self, features: Iterable[str]) -> int:
        """What asking for `features` costs per request, in nanos (rounded up).

        Raises:
            ValueError: a feature without a price (never passed through free).
        """
        prices = dict(self.fees)
        total = 0
        for feature in features:
            if feature not in prices:
                raise ValueError(f"no price for {feature}")
            total += math.ceil(prices[feature] * 1_000_000_000)
        return total


@record
class Offer:
    """One provider's offer of one model."""

    model_id: str
    provider: str
    provider_model_id: str
    priority: int
    price: Price
    context_length: int | None = None
    max_output_tokens: int | None = None


@record
class Usage:
    """Tokens by class; the classes do not overlap (cached input is not in `input_tokens`,
    reasoning is not in `output_tokens`)."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage:
        """From an OpenAI `usage` object, where prompt tokens include cached ones and
        completion tokens include reasoning ones. Missing or malformed fields count 0."""
        if not isinstance(usage, dict):
            return cls()
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        cached = (
            _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
        )
        reasoning = (
            _count(completion_details.get("reasoning_tokens"))
            if isinstance(completion_details, dict)
            else 0
        )
        cached, reasoning = min(cached, prompt), min(reasoning, completion)
        return cls(
            input_tokens=prompt - cached,
            cached_input_tokens=cached,
            output_tokens=completion - reasoning,
            reasoning_tokens=reasoning,
        )

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cached_input_tokens

    @property
    def completion_tokens(self) -> int:
        return self.output_tokens + self.reasoning_tokens


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def token_cost_nanos(tokens: int, usd_per_million: Decimal) -> int:
    """ceil(tokens * price * 1000): never rounds a charge down. Exact integer arithmetic
    on the price as a fraction (no Decimal context, whose precision is finite)."""
    if tokens <= 0:
        return 0
    numerator, denominator = _nanos_per_token(usd_per_million)
    return -(-tokens * numerator // denominator)


@functools.lru_cache(maxsize=1024)
def _nanos_per_token(usd_per_million: Decimal) -> tuple[int, int]:
    """Nanos per token of a price in USD per million tokens, as an exact fraction; a
    catalog has a few prices, each seen on every request."""
    numerator, denominator = usd_per_million.as_integer_ratio()
    return numerator * 1000, denominator


def cost_nanos(price: Price, usage: Usage) -> int:
    """What `usage` costs at `price`, in nanos, class by class.

    Raises:
        ValueError: usage of a class the offer has no price for.
    """
    cached_price = price.cached_input if price.cached_input is not None else price.input
    reasoning_price = price.reasoning if price.reasoning is not None else price.output
    parts = (
        (usage.input_tokens, price.input, "input"),
        (usage.cached_input_tokens, cached_price, "cached input"),
        (usage.output_tokens, price.output, "output"),
        (usage.reasoning_tokens, reasoning_price, "reasoning"),
    )
    total = 0
    for tokens, unit, name in parts:
        if tokens <= 0:
            continue
        if unit is None:
            raise ValueError(f"no {name} price")
        total += token_cost_nanos(tokens, unit)
    if usage.images > 0:
        if price.image is None:
            raise ValueError("no image price")
        total += math.ceil(usage.images * price.image * 1_000_000_000)
    return total


def max_tokens_affordable(price: Price, budget_nanos: int, prompt_tokens: int) -> int:
    """The most output tokens `budget_nanos` pays for after `prompt_tokens` of input,
    every output token billed at the dearer of output and reasoning (`hold_nanos`)."""
    assert price.input is not None
    assert price.output is not None
    out_price = max(price.output, price.reasoning or price.output)
    left = budget_nanos - token_cost_nanos(prompt_tokens, price.input)
    if left < 0:
        return 0
    if out_price == 0:
        return 2**31 - 1  # free output: the budget never runs out
    # Exact: floor(left / nanos per token) tokens cost at most `left`, one more costs more.
    numerator, denominator = _nanos_per_token(out_price)
    return left * denominator // numerator


def hold_nanos(price: Price, prompt_tokens: int, output_tokens: int) -> int:
    """The most a request can cost: its prompt, and every output token at the dearer of
    output and reasoning (a reasoning model spends its output budget on either)."""
    assert price.input is not None
    assert price.output is not None
    out_price = max(price.output, price.reasoning or price.output)
    return token_cost_nanos(prompt_tokens, price.input) + token_cost_nanos(output_tokens, out_price)


def percent_nanos(nanos: int, percent: Decimal) -> int:
    """`percent` % of `nanos`, rounded up (a fee is never rounded down)."""
    exact = Decimal(nanos) * percent / 100
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def before_percent_nanos(nanos: int, percent: Decimal) -> int:
    """The largest amount whose `percent` % (rounded up) is at most `nanos`: what a budget
    of `nanos` covers when only that percentage of the cost is charged."""
    if percent <= 0:
        return 2**62  # nothing is charged: any cost fits
    return int((Decimal(nanos) * 100 / percent).to_integral_value(rounding=ROUND_FLOOR))
