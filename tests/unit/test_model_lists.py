"""Reading a provider's model list (gatewayz/chat/model_lists.py) and the markup rule
(gatewayz/chat/catalog_refresh.py): what is priced, what is not, and rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayz.chat.catalog_refresh import marked_up
from gatewayz.chat.model_lists import parse
from tests.fakes.openai_upstream import openrouter_model


def test_an_openrouter_entry_is_read_whole() -> None:
    entry = openrouter_model(
        "acme/vision", prompt="0.0000025", completion="0.00001", input_cache_read="0.00000125",
        context_length=128_000, max_completion_tokens=16_384,
        input_modalities=("text", "image"), supported_parameters=("tools", "seed"),
    )  # fmt: skip
    (listed,) = parse([entry])
    assert (listed.id, listed.name, listed.context_length) == (
        "acme/vision", entry["name"], 128_000,
    )  # fmt: skip
    assert listed.max_output_tokens == 16_384
    assert listed.input_modalities == ("text", "image")
    assert listed.supported_parameters == ("tools", "seed")
    assert listed.price is not None
    assert (listed.price.input, listed.price.output) == (Decimal("2.5"), Decimal("10"))
    assert listed.price.cached_input == Decimal("1.25")
    assert listed.price.reasoning is None


@pytest.mark.parametrize(
    "pricing",
    [
        {"prompt": "-1", "completion": "-1"},  # varies by request (openrouter/auto)
        {"prompt": "0.000001"},  # no completion price
        {"prompt": "0.000001", "completion": "0.000001", "request": "0.01"},
        {"prompt": "abc", "completion": "0.000001"},
        {"prompt": "NaN", "completion": "0.000001"},
        {"prompt": True, "completion": "0.000001"},
        {"prompt": "0.000001", "completion": "0.000001", "image": "-0.1"},
        "0.000001",
    ],
)
def test_a_price_that_cannot_be_charged_exactly_leaves_the_entry_unpriced(
    pricing: object,
) -> None:
    (listed,) = parse([{"id": "acme/m", "pricing": pricing}])
    assert listed.price is None


def test_entries_without_a_usable_id_are_skipped_and_the_first_of_an_id_counts() -> None:
    data = [
        {"id": "acme/a", "name": "first"},
        {"id": "acme/a", "name": "second"},
        {"id": ""},
        {"id": 7},
        {"name": "no id"},
        "acme/b",
    ]
    assert [(m.id, m.name) for m in parse(data)] == [("acme/a", "first")]


def test_missing_metadata_gets_defaults_and_no_limits() -> None:
    (listed,) = parse([{"id": "Org/Model-7B", "context_length": "4096", "created": -5}])
    assert (listed.name, listed.context_length, listed.created) == ("Org/Model-7B", None, None)
    assert (listed.input_modalities, listed.output_modalities) == (("text",), ("text",))
    assert listed.price is None


@pytest.mark.parametrize(
    ("price", "percent", "expected"),
    [
        ("0.15", "0", "0.15"),
        ("0.15", "10", "0.165"),
        ("0.123456789123", "0", "0.123456790"),  # beyond the scale: rounded up
        ("0.000000001", "0.5", "0.000000002"),
        ("0", "25", "0"),
    ],
)
def test_the_markup_rounds_up_to_the_nano_dollar(price: str, percent: str, expected: str) -> None:
    marked = marked_up(Decimal(price), Decimal(percent))
    assert marked == Decimal(expected)
    assert marked >= Decimal(price)
    assert marked.as_tuple().exponent == -9
