"""What each image model accepts and what its images cost, in catalog prices
(gatewayz/images/rules.py), and the request checked against it (gatewayz/images/request.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayz import errors
from gatewayz.images import request, rules

DALL_E_3 = rules.rule("openai/dall-e-3")


@pytest.mark.parametrize(
    ("quality", "size", "factor"),
    [
        ("standard", "1024x1024", 1),  # $0.04, the catalog's price
        ("standard", "1792x1024", 2),  # $0.08
        ("hd", "1024x1024", 2),  # $0.08
        ("hd", "1024x1792", 3),  # $0.12
    ],
)
def test_dall_e_3_costs_what_openai_charges(quality: str, size: str, factor: int) -> None:
    assert DALL_E_3.factor(quality, size) == Decimal(factor)


def test_a_model_without_a_rule_takes_one_default_image_at_its_catalog_price() -> None:
    default = rules.rule("someone/new-painter")
    assert default is rules.DEFAULT
    parsed = request.parse({"model": "someone/new-painter", "prompt": "a cat"}, default)
    assert (parsed.n, parsed.size, parsed.quality, parsed.style) == (
        1,
        "1024x1024",
        "standard",
        None,
    )
    assert default.factor(parsed.quality, parsed.size) == 1
    with pytest.raises(errors.InvalidRequest) as raised:
        request.parse({"model": "x/y", "prompt": "a cat", "size": "512x512"}, default)
    assert raised.value.param == "size"


def test_only_validated_fields_go_upstream_and_response_format_never_does() -> None:
    parsed = request.parse(
        {"model": "openai/dall-e-3", "prompt": "a cat", "style": "natural", "quality": "hd",
         "size": "1792x1024", "response_format": "b64_json", "user": "u1", "n": None},
        DALL_E_3,
    )  # fmt: skip
    assert parsed.upstream_body() == {
        "model": "openai/dall-e-3",
        "prompt": "a cat",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "user": "u1",
    }
    assert parsed.response_format == "b64_json"
    assert parsed.prompt_tokens == 2  # five bytes, four a token, rounded up
