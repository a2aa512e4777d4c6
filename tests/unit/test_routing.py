"""Which offers are tried, in which order (DESIGN §3 steps 4 and 6)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayz import errors
from gatewayz.catalog import Model
from gatewayz.pricing import Offer, Price
from gatewayz.providers import REGISTRY, Upstream
from gatewayz.routing import Preferences, plan

UPSTREAMS = {name: Upstream(p, f"http://{name}.test/v1", "k") for name, p in REGISTRY.items()}


def model(model_id: str, *offers: tuple[str, int, str]) -> Model:
    return Model(
        id=model_id,
        name=model_id,
        context_length=1000,
        offers=tuple(
            Offer(
                model_id,
                provider,
                f"{provider}/{model_id}",
                priority,
                Price(Decimal(price), Decimal(price)),
            )
            for provider, priority, price in offers
        ),
    )


LLAMA = model(
    "meta/llama", ("featherless", 10, "0.5"), ("chutes", 20, "0.1"), ("openrouter", 30, "0.2")
)
GPT = model("openai/gpt", ("openrouter", 10, "1"), ("portkey", 20, "1"))


def order(
    prefs: Preferences, *models: Model, upstreams: dict[str, Upstream] = UPSTREAMS
) -> list[str]:
    return [f"{a.offer.model_id}@{a.offer.provider}" for a in plan(list(models), prefs, upstreams)]


def test_priority_order_then_the_fallback_models() -> None:
    assert order(Preferences(), LLAMA, GPT) == [
        "meta/llama@featherless", "meta/llama@chutes", "meta/llama@openrouter",
        "openai/gpt@openrouter", "openai/gpt@portkey",
    ]  # fmt: skip


def test_only_providers_with_a_key_are_tried() -> None:
    some = {k: v for k, v in UPSTREAMS.items() if k in ("chutes", "portkey")}
    assert order(Preferences(), LLAMA, GPT, upstreams=some) == [
        "meta/llama@chutes",
        "openai/gpt@portkey",
    ]


def test_order_only_ignore_sort_and_no_fallbacks() -> None:
    assert order(Preferences(order=("openrouter", "chutes")), LLAMA) == [
        "meta/llama@openrouter", "meta/llama@chutes", "meta/llama@featherless",
    ]  # fmt: skip
    assert order(Preferences(order=("openrouter",), allow_fallbacks=False), LLAMA) == [
        "meta/llama@openrouter"
    ]
    assert order(Preferences(allow_fallbacks=False), LLAMA) == ["meta/llama@featherless"]
    assert order(Preferences(only=("chutes", "openrouter")), LLAMA) == [
        "meta/llama@chutes",
        "meta/llama@openrouter",
    ]
    assert order(Preferences(ignore=("featherless",)), LLAMA) == [
        "meta/llama@chutes",
        "meta/llama@openrouter",
    ]
    assert order(Preferences(sort="price"), LLAMA) == [
        "meta/llama@chutes", "meta/llama@openrouter", "meta/llama@featherless",
    ]  # fmt: skip


def test_an_offer_without_token_prices_is_never_tried() -> None:
    image_only = Model(
        id="x/img", name="img", context_length=1,
        offers=(Offer("x/img", "openrouter", "img", 1, Price(None, None, image=Decimal("0.04"))),),
    )  # fmt: skip
    assert order(Preferences(), image_only) == []


def test_preferences_parse_openrouters_object() -> None:
    prefs = Preferences.parse(
        {"order": ["OpenRouter"], "allow_fallbacks": False, "ignore": ["chutes"]}
    )
    assert prefs == Preferences(order=("openrouter",), ignore=("chutes",), allow_fallbacks=False)
    assert Preferences.parse(None) == Preferences()


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ("openrouter", "provider"),
        ({"order": "openrouter"}, "provider.order"),
        ({"only": [1]}, "provider.only"),
        ({"allow_fallbacks": "no"}, "provider.allow_fallbacks"),
        ({"sort": "speed"}, "provider.sort"),
    ],
)
def test_bad_preferences_are_a_400_naming_the_field(value: object, param: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        Preferences.parse(value)
    assert caught.value.param == param
