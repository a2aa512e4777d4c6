"""Which offers are tried, in which order."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import errors
from gatewayz.billing.pricing import Offer, Price
from gatewayz.chat import upstream
from gatewayz.chat.model import Model
from gatewayz.chat.providers import REGISTRY, Upstream
from gatewayz.chat.routing import (
    Attempt,
    Preferences,
    Retryable,
    first_success,
    open_response,
    plan,
)
from tests.fakes.openai_upstream import Behaviour, FakeUpstream, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

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


def test_sort_by_price_adds_input_and_output_prices() -> None:
    # Ranked by output alone, or by input alone, or with a free price taken as $1, the
    # order would differ.
    priced = Model(
        id="x/m", name="m", context_length=1000,
        offers=tuple(
            Offer("x/m", provider, f"{provider}/m", priority, Price(Decimal(i), Decimal(o)))
            for provider, priority, i, o in (
                ("featherless", 1, "0.1", "1.0"), ("chutes", 2, "0.9", "0.5"),
                ("openrouter", 3, "0", "0.7"), ("portkey", 4, "0.4", "0"),
            )
        ),
    )  # fmt: skip
    assert order(Preferences(sort="price"), priced) == [
        "x/m@portkey", "x/m@openrouter", "x/m@featherless", "x/m@chutes",
    ]  # fmt: skip


def test_preferences_parse_openrouters_object() -> None:
    prefs = Preferences.parse(
        {"order": ["OpenRouter"], "allow_fallbacks": False, "ignore": ["chutes"]}
    )
    assert prefs == Preferences(order=("openrouter",), ignore=("chutes",), allow_fallbacks=False)
    assert Preferences.parse(None) == Preferences()
    assert Preferences.parse({}) == Preferences(allow_fallbacks=True)
    assert Preferences.parse({"sort": "price"}) == Preferences(sort="price")
    assert Preferences.parse({"sort": "priority"}) == Preferences(sort="priority")


@pytest.mark.parametrize(
    ("value", "param", "message"),
    [
        ("openrouter", "provider", "`provider` must be an object."),
        ({"order": "openrouter"}, "provider.order",
         "`provider.order` must be a list of provider names."),
        ({"only": [1]}, "provider.only", "`provider.only` must be a list of provider names."),
        ({"allow_fallbacks": "no"}, "provider.allow_fallbacks",
         "`provider.allow_fallbacks` must be a boolean."),
        ({"sort": "speed"}, "provider.sort", '`provider.sort` must be "price" or "priority".'),
    ],
)  # fmt: skip
def test_bad_preferences_are_a_400_naming_the_field(
    value: object, param: str, message: str
) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        Preferences.parse(value)
    assert caught.value.param == param
    assert caught.value.message == message


# --- first_success: fail over, and say why in the log -----------------------------------


async def test_each_failed_attempt_is_logged_with_its_provider_model_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def send(attempt: Attempt) -> str:
        if attempt.offer.provider != "openrouter":
            raise Retryable(f"status 50{attempt.offer.priority // 10}")
        return "answered by openrouter"

    with caplog.at_level(logging.WARNING):
        result = await first_success(plan([LLAMA], Preferences(), UPSTREAMS), send, max_attempts=3)
    assert result == "answered by openrouter"
    failed = [r for r in caplog.records if r.getMessage() == "upstream attempt failed"]
    assert [(r.provider, r.model, r.reason) for r in failed] == [
        ("featherless", "meta/llama", "status 501"),
        ("chutes", "meta/llama", "status 502"),
    ]


async def test_attempts_stop_at_the_maximum_and_the_last_failure_names_the_error() -> None:
    tried: list[str] = []

    async def send(attempt: Attempt) -> str:
        tried.append(attempt.offer.provider)
        raise Retryable("timeout", timeout=attempt.offer.provider == "chutes")

    attempts = plan([LLAMA], Preferences(), UPSTREAMS)
    with pytest.raises(errors.UpstreamTimeout) as timed_out:
        await first_success(attempts, send, max_attempts=2)
    assert tried == ["featherless", "chutes"]
    assert timed_out.value.message == "The provider did not answer in time."
    for tries in (attempts, []):  # openrouter's failure was no timeout; nothing to try
        with pytest.raises(errors.UpstreamError) as failed:
            await first_success(tries, send, max_attempts=3)
        assert type(failed.value) is errors.UpstreamError
        assert failed.value.message == "The provider failed to answer. Try again later."


# --- open_response: what an upstream's refusal becomes -----------------------------------


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeUpstream]:
    with serve() as fake:
        yield fake


@pytest.fixture
def at_fake(provider: FakeUpstream) -> Attempt:
    provider.reset()
    fake = Upstream(REGISTRY["openrouter"], provider.base_url, "sk-test")
    return Attempt(LLAMA, LLAMA.offers[2], fake)


BODY = {"messages": [{"role": "user", "content": "hi"}]}
LIMITS = upstream.Limits(connect_s=5, read_s=5)


async def refusal(attempt: Attempt) -> errors.GatewayError:
    try:
        with pytest.raises(errors.GatewayError) as caught:
            await open_response(attempt, "/chat/completions", BODY, stream=False, limits=LIMITS)
    finally:
        await upstream.close_pool()  # this test's event loop ends with the test
    return caught.value


@pytest.mark.parametrize(
    ("stream", "accept"), [(False, "application/json"), (True, "text/event-stream")]
)
async def test_the_request_carries_the_key_and_asks_for_json_or_events(
    provider: FakeUpstream, at_fake: Attempt, stream: bool, accept: str
) -> None:
    try:
        reply = await open_response(
            at_fake, "/chat/completions", BODY, stream=stream, limits=LIMITS
        )
        assert reply.status == 200
        assert b"hi" in await reply.read()
        await reply.close()
    finally:
        await upstream.close_pool()
    sent = provider.last
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == accept
    assert sent.json["model"] == "openrouter/meta/llama"
    assert sent.json["messages"] == BODY["messages"]


PREFIX = "The provider rejected the request: "


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"error_body": {"error": {"message": "tools[0] is malformed"}}}, "tools[0] is malformed"),
        ({"error_body": {"error": "max_tokens is too large"}}, "max_tokens is too large"),
        ({"error_body": {"error": {"code": 7}}}, "invalid request"),
        ({"error_body": {"error": {"message": ""}}}, "invalid request"),
        ({"error_body": {"detail": "nothing here"}}, "invalid request"),
        ({"raw_body": "<html>Bad Request</html>"}, "invalid request"),
        ({"raw_body": "[1, 2]"}, "invalid request"),
        ({"error_body": {"error": {"message": "y" * 600}}}, "y" * 300 + "..."),
    ],
)
async def test_a_400_passes_on_the_providers_own_message_short(
    provider: FakeUpstream, at_fake: Attempt, answer: dict[str, Any], message: str
) -> None:
    provider.enqueue(Behaviour(status=400, **answer))
    refused = await refusal(at_fake)
    assert isinstance(refused, errors.InvalidRequest)
    assert refused.message == PREFIX + message


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_busy_or_failing_providers_are_retryable(
    provider: FakeUpstream, at_fake: Attempt, status: int
) -> None:
    provider.enqueue(Behaviour(status=status))
    try:
        with pytest.raises(Retryable) as caught:
            await open_response(at_fake, "/chat/completions", BODY, stream=False, limits=LIMITS)
    finally:
        await upstream.close_pool()
    assert str(caught.value) == f"status {status}"
    assert caught.value.timeout is False


async def test_a_dropped_connection_is_retryable(provider: FakeUpstream, at_fake: Attempt) -> None:
    provider.enqueue(Behaviour(drop_connection=True))
    try:
        with pytest.raises(Retryable) as caught:
            await open_response(at_fake, "/chat/completions", BODY, stream=True, limits=LIMITS)
    finally:
        await upstream.close_pool()
    assert str(caught.value).startswith("connection: ")
    assert caught.value.timeout is False


async def test_a_silent_provider_is_a_retryable_timeout(
    provider: FakeUpstream, at_fake: Attempt
) -> None:
    provider.enqueue(Behaviour(delay_s=2))
    silent_for_long = upstream.Limits(connect_s=5, read_s=0.2)
    try:
        with pytest.raises(Retryable) as caught:
            await open_response(
                at_fake, "/chat/completions", BODY, stream=False, limits=silent_for_long
            )
    finally:
        await upstream.close_pool()
    assert str(caught.value).startswith("timeout: ")
    assert caught.value.timeout is True


async def test_a_400_whose_body_breaks_off_is_still_the_clients_error(
    provider: FakeUpstream, at_fake: Attempt
) -> None:
    provider.enqueue(Behaviour(status=400, cut_after=0))
    refused = await refusal(at_fake)
    assert type(refused) is errors.InvalidRequest
    assert refused.message == PREFIX + "invalid request"


@pytest.mark.parametrize("status", [413, 422])
async def test_a_request_too_large_or_unprocessable_is_the_clients_error(
    provider: FakeUpstream, at_fake: Attempt, status: int
) -> None:
    provider.enqueue(Behaviour(status=status, error_body={"error": {"message": "too long"}}))
    refused = await refusal(at_fake)
    assert type(refused) is errors.InvalidRequest
    assert refused.message == PREFIX + "too long"


@pytest.mark.parametrize("status", [401, 402, 403, 404, 418])
async def test_a_provider_refusing_us_is_an_upstream_error_naming_only_the_status(
    provider: FakeUpstream, at_fake: Attempt, status: int
) -> None:
    provider.enqueue(Behaviour(status=status))  # its body holds an internal detail
    refused = await refusal(at_fake)
    if status in (401, 403, 404):  # our key or the model id: a retry cannot change it
        assert type(refused) is errors.UpstreamRefused
        assert refused.response_headers()["x-should-retry"] == "false"
    else:
        assert type(refused) is errors.UpstreamError
        assert "x-should-retry" not in refused.response_headers()
    assert refused.message == f"The provider refused the request (status {status})."
