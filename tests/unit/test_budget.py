"""The hold and each attempt's output cap (gatewayz/chat/budget.py), by
hand-computed examples: prices of $1 and $2 per million tokens are 1,000 and 2,000 nanos
a token."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gatewayz import errors
from gatewayz.billing.pricing import Offer, Price
from gatewayz.chat import budget
from gatewayz.chat import request as chat_request
from gatewayz.chat.model import Model
from gatewayz.chat.providers import REGISTRY, Upstream
from gatewayz.chat.routing import Attempt

OPENROUTER = Upstream(REGISTRY["openrouter"], "http://openrouter.test/v1", "k")
CHEAP = Price(Decimal(1), Decimal(2))


def attempt(
    *,
    price: Price = CHEAP,
    context: int = 8_192,
    limit: int | None = 1_024,
    offer_limit: int | None = None,
    modalities: tuple[str, ...] = ("text",),
    image_tokens: int | None = None,
) -> Attempt:
    model = Model(
        id="test/m",
        name="m",
        context_length=context,
        max_output_tokens=limit,
        input_modalities=modalities,
        max_image_tokens=image_tokens,
    )
    offer = Offer("test/m", "openrouter", "or/m", 10, price, max_output_tokens=offer_limit)
    return Attempt(model, offer, OPENROUTER)


def chat(text: str = "hi", **fields: Any) -> chat_request.CompletionRequest:
    body = {"model": "test/m", "messages": [{"role": "user", "content": text}], **fields}
    return chat_request.parse(body, chat=True)


EMPTY = len('[{"role": "user", "content": ""}]')  # the JSON around the text: 33 bytes


def bound(text: str) -> int:
    """The prompt bound of one user message of plain ASCII `text` (see test_prompt_size):
    its bytes as JSON, 8 for the message and 64 for the template's preamble."""
    return EMPTY + len(text) + 8 + 64


def test_without_max_tokens_the_cap_is_the_models_output_limit() -> None:
    plan = budget.plan([attempt()], chat())
    (route,) = plan.routes
    assert route.cap == 1_024
    assert route.prompt_tokens == bound("hi")
    assert plan.max_nanos == bound("hi") * 1_000 + 1_024 * 2_000
    # Without an explicit cap the least acceptable is 16 output tokens.
    assert plan.min_nanos == bound("hi") * 1_000 + 16 * 2_000


def test_a_long_prompt_still_plans_real_output_not_one_token() -> None:
    # 20,000 bytes: the bound says 20,000+ tokens (more than the 8,192 context), a typical
    # count says about 5,000: the provider decides whether it fits; the cap is the limit.
    text = "word " * 4_000
    plan = budget.plan([attempt()], chat(text))
    assert plan.routes[0].cap == 1_024
    assert plan.routes[0].prompt_tokens > 8_192


def test_the_cap_leaves_room_in_the_context_by_a_typical_count() -> None:
    text = "x" * 30_000  # 30,033 bytes of JSON: typically 7,509 tokens, + 8 for the message
    plan = budget.plan([attempt()], chat(text))
    assert plan.routes[0].cap == 8_192 - 7_517


def test_a_prompt_that_cannot_fit_even_by_a_typical_count_is_a_400() -> None:
    with pytest.raises(errors.ContextLengthExceeded) as caught:
        budget.plan([attempt()], chat("x" * 40_000))
    assert caught.value.param == "messages"
    assert caught.value.code == "context_length_exceeded"
    # A fallback model with room keeps the request, and only it is planned.
    roomy = attempt(context=128_000)
    plan = budget.plan([attempt(), roomy], chat("x" * 40_000))
    assert [r.attempt for r in plan.routes] == [roomy]


def test_each_attempt_plans_its_own_cap_and_the_hold_covers_the_dearest() -> None:
    first = attempt(limit=1_024)
    fallback = attempt(offer_limit=4_096, price=Price(Decimal(1), Decimal(3)))
    plan = budget.plan([first, fallback], chat())
    assert [r.cap for r in plan.routes] == [1_024, 4_096]
    prompt = bound("hi")
    assert plan.max_nanos == prompt * 1_000 + 4_096 * 3_000
    # Held in full, each attempt is sent its own cap.
    assert [plan.cap(r, plan.max_nanos) for r in plan.routes] == [1_024, 4_096]


def test_an_explicit_max_tokens_is_held_whole_and_above_the_limit_refused() -> None:
    plan = budget.plan([attempt()], chat(max_tokens=100))
    assert plan.routes[0].cap == 100
    assert plan.min_nanos == plan.max_nanos == bound("hi") * 1_000 + 100 * 2_000
    assert budget.plan([attempt()], chat(max_tokens=1_024)).routes[0].cap == 1_024
    # As OpenAI answers: a 400 naming the field the client set, never a silent clamp.
    for field in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(errors.InvalidRequest) as raised:
            budget.plan([attempt()], chat(**{field: 1_025}))
        assert raised.value.param == field
        assert "at most 1024 output tokens" in raised.value.message


def test_a_smaller_hold_lowers_each_cap_to_what_it_pays_for_at_that_price() -> None:
    dear = attempt(price=Price(Decimal(1), Decimal(4)))
    plan = budget.plan([attempt(), dear], chat())
    held = bound("hi") * 1_000 + 400 * 4_000  # 400 tokens at the dearer price
    assert [plan.cap(r, held) for r in plan.routes] == [800, 400]
    # Below 16 tokens an attempt is not worth sending.
    assert plan.cap(plan.routes[1], bound("hi") * 1_000 + 15 * 4_000) is None
    # An explicit max_tokens is what was asked for, or nothing.
    asked = budget.plan([attempt()], chat(max_tokens=100))
    assert asked.cap(asked.routes[0], asked.max_nanos - 1) is None


def test_outputs_and_predictions_multiply_and_add_to_the_hold() -> None:
    plan = budget.plan([attempt()], chat(max_tokens=10, n=3))
    assert plan.max_nanos == bound("hi") * 1_000 + 3 * 10 * 2_000
    prediction = {"type": "content", "content": "y" * 66}  # 100 bytes of JSON
    predicted = budget.plan([attempt()], chat(max_tokens=10, prediction=prediction))
    assert predicted.max_nanos == bound("hi") * 1_000 + (10 + 100) * 2_000


def test_a_dearer_reasoning_price_bounds_every_output_token() -> None:
    thinker = attempt(price=Price(Decimal(1), Decimal(2), reasoning=Decimal(5)))
    plan = budget.plan([thinker], chat(max_tokens=10))
    assert plan.max_nanos == bound("hi") * 1_000 + 10 * 5_000


def test_images_count_at_the_models_rule_and_need_a_model_that_sees() -> None:
    content = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]
    request = chat_request.parse(
        {"model": "test/m", "messages": [{"role": "user", "content": content}]}, chat=True
    )
    with pytest.raises(errors.InvalidRequest, match="image input"):
        budget.plan([attempt()], request)
    vision = attempt(modalities=("text", "image"), image_tokens=48_169)
    plan = budget.plan([vision], request)
    assert plan.routes[0].prompt_tokens == request.prompt.bound + 48_169
    unknown = budget.plan([attempt(modalities=("text", "image"))], request)
    assert unknown.routes[0].prompt_tokens == request.prompt.bound + 50_000


def test_fees_are_held_and_part_of_every_routes_cost() -> None:
    search = Price(Decimal(1), Decimal(2), fees=(("web_search", Decimal("0.02")),))
    plan = budget.plan([attempt(price=search)], chat(max_tokens=10, plugins=[{"id": "web"}]))
    assert plan.routes[0].fee_nanos == 20_000_000
    assert plan.max_nanos == bound("hi") * 1_000 + 10 * 2_000 + 20_000_000


def test_the_rate_limit_estimate_is_the_typical_prompt_and_every_output_at_its_cap() -> None:
    plan = budget.plan([attempt(), attempt(offer_limit=2_000)], chat(n=2))
    assert plan.tokens == plan.routes[0].typical_prompt_tokens + 2 * 2_000
