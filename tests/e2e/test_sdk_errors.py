"""Errors the OpenAI SDK acts on correctly: what a retry cannot change says
`x-should-retry: false` and is tried once; a 429 is retried after its `Retry-After`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from tests.e2e.conftest import MODEL, new_account
from tests.fakes.openai_upstream import SECRET, Behaviour

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "hello there"}]


class Counting:
    """An SDK client (two retries, as the SDK defaults) and every request it sent."""

    def __init__(self, gateway: str, secret: str) -> None:
        self.sent: list[httpx.Request] = []
        http_client = httpx.Client(event_hooks={"request": [self.sent.append]})
        self.sdk = openai.OpenAI(
            base_url=gateway, api_key=secret, max_retries=2, http_client=http_client
        )


def post(gateway: str, account: Account, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{gateway}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.secret}"},
    )


def test_the_sdk_tries_an_upstream_400_once_and_sees_its_param_and_a_clean_message(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    leaky = (
        "tools[0].function.name is invalid; key sk-live-abcdef123456 sent to "
        "https://10.0.3.7:8443/v1/chat by gw_live_0123456789abcdef with Bearer abc.def.ghi "
        + "x"
        * 2000
    )
    upstreams.primary.enqueue(
        Behaviour(
            status=400,
            error_body={
                "error": {"message": leaky, "type": "invalid_request_error", "param": "tools"}
            },
        )
    )
    client = Counting(gateway, account.secret)
    with pytest.raises(openai.BadRequestError) as raised:
        client.sdk.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert len(client.sent) == 1
    assert len(upstreams.primary.requests) == 1
    response = raised.value.response
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["param"] == "tools"
    assert "tools[0].function.name is invalid" in error["message"]
    for secret in ("sk-live", "gw_live", "abc.def.ghi", "10.0.3.7", "https://", SECRET):
        assert secret not in error["message"]
    assert len(error["message"]) < 500


def test_the_sdk_does_not_retry_a_402(gateway: str) -> None:
    broke = new_account(credit_nanos=0)
    client = Counting(gateway, broke.secret)
    with pytest.raises(openai.APIStatusError) as raised:
        client.sdk.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.status_code == 402
    assert len(client.sent) == 1
    # The client set no max_tokens: the message does not tell it to lower one.
    assert "max_tokens" not in raised.value.response.json()["error"]["message"]
    with pytest.raises(openai.APIStatusError) as raised:
        client.sdk.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=100)  # type: ignore[arg-type]
    assert "lower max_tokens" in raised.value.response.json()["error"]["message"]
    assert raised.value.response.headers["x-should-retry"] == "false"


def test_the_sdk_does_not_retry_a_403(gateway: str, upstreams: Upstreams) -> None:
    no_chat = new_account(scopes=("models:read",))
    client = Counting(gateway, no_chat.secret)
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.sdk.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert len(client.sent) == 1
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert upstreams.primary.requests == []


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_502_wrapping_a_refusal_of_us_says_not_to_retry(
    gateway: str, account: Account, upstreams: Upstreams, status: int
) -> None:
    upstreams.primary.enqueue(Behaviour(status=status))
    response = post(gateway, account, {"model": MODEL, "messages": HELLO})
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"


def test_a_502_of_a_provider_down_may_be_retried(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=500))
    upstreams.secondary.enqueue(Behaviour(status=500))
    response = post(gateway, account, {"model": MODEL, "messages": HELLO})
    assert response.status_code == 502
    assert "x-should-retry" not in response.headers


def test_every_provider_429_is_a_429_with_the_shortest_retry_after(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=429, headers={"retry-after": "7"}))
    upstreams.secondary.enqueue(Behaviour(status=429, headers={"retry-after-ms": "2500"}))
    response = post(gateway, account, {"model": MODEL, "messages": HELLO})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "upstream_rate_limited"
    assert "x-should-retry" not in response.headers


def test_a_429_without_any_retry_after_gives_none(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=429))
    upstreams.secondary.enqueue(Behaviour(status=429))
    response = post(gateway, account, {"model": MODEL, "messages": HELLO, "stream": True})
    assert response.status_code == 429
    assert "retry-after" not in response.headers


def test_one_provider_429_and_one_down_is_still_a_502(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=429, headers={"retry-after": "1"}))
    upstreams.secondary.enqueue(Behaviour(status=503))
    assert post(gateway, account, {"model": MODEL, "messages": HELLO}).status_code == 502


def test_the_sdk_retries_the_429_after_its_retry_after_and_succeeds(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=429, headers={"retry-after": "1"}))
    upstreams.secondary.enqueue(Behaviour(status=429, headers={"retry-after": "1"}))
    client = Counting(gateway, account.secret)
    answer = client.sdk.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == HELLO[0]["content"]
    assert len(client.sent) == 2
    assert len(upstreams.primary.requests) == 2


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_an_output_cap_above_the_models_limit_is_a_400_naming_it(
    gateway: str, account: Account, upstreams: Upstreams, field: str
) -> None:
    client = Counting(gateway, account.secret)
    with pytest.raises(openai.BadRequestError) as raised:
        client.sdk.chat.completions.create(model=MODEL, messages=HELLO, **{field: 1025})  # type: ignore[call-overload]
    error = raised.value.response.json()["error"]
    assert error["param"] == field
    assert "1024" in error["message"]
    assert len(client.sent) == 1
    assert upstreams.primary.requests == []
    # At the limit it is served.
    client.sdk.chat.completions.create(model=MODEL, messages=HELLO, **{field: 1024})  # type: ignore[call-overload]


def test_a_request_no_tokens_per_minute_window_can_hold_is_a_400_not_a_429(gateway: str) -> None:
    small = new_account(tokens_per_minute=100)
    client = Counting(gateway, small.secret)
    with pytest.raises(openai.BadRequestError) as raised:
        client.sdk.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=500)  # type: ignore[arg-type]
    response = raised.value.response
    assert response.json()["error"]["code"] == "exceeds_tokens_per_minute"
    assert response.json()["error"]["param"] == "max_tokens"
    assert response.headers["x-should-retry"] == "false"
    assert len(client.sent) == 1
    # A cap the window can hold is served.
    client.sdk.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=50)  # type: ignore[arg-type]
