"""Client mistakes as the SDKs expect them: nullable fields sent as `null` mean absent,
`provider` preferences that leave no provider are 400s naming the field, unknown paths
and wrong methods get the usual envelope, and error messages quote input briefly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import MODEL

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "hello there"}]
# Every optional field of OpenAI's chat request that its spec lets a client send as null.
CHAT_NULLS = (
    "stream", "n", "stop", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "user", "tools", "tool_choice", "response_format", "stream_options", "logprobs",
    "top_logprobs", "seed", "frequency_penalty", "presence_penalty", "logit_bias", "metadata",
    "service_tier", "reasoning_effort", "modalities", "prediction", "audio", "verbosity",
    "parallel_tool_calls", "store", "web_search_options", "provider", "models",
)  # fmt: skip
COMPLETION_NULLS = ("prompt", "stream", "n", "stop", "max_tokens", "echo", "suffix", "logprobs",
                    "best_of", "seed", "temperature", "user", "stream_options")  # fmt: skip


def post(
    gateway: str, account: Account, body: Any, path: str = "/chat/completions"
) -> httpx.Response:
    return httpx.post(
        f"{gateway}{path}", json=body, headers={"authorization": f"Bearer {account.secret}"}
    )


def test_nullable_chat_fields_sent_as_null_mean_absent(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    body = {"model": MODEL, "messages": HELLO, **dict.fromkeys(CHAT_NULLS)}
    response = post(gateway, account, body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == HELLO[0]["content"]
    sent = upstreams.primary.last.json
    # The output cap goes up as the gateway sets it; nothing else the client nulled.
    assert [name for name in CHAT_NULLS if name in sent] == ["max_tokens"]
    assert None not in sent.values()


def test_nullable_completion_fields_sent_as_null_mean_absent(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    body = {"model": MODEL, **dict.fromkeys(COMPLETION_NULLS)}
    response = post(gateway, account, body, "/completions")
    assert response.status_code == 200, response.text
    sent = upstreams.primary.last.json
    assert None not in sent.values()
    assert sent["prompt"] == ""  # OpenAI's default for a null prompt
    # Absent is still missing: the spec requires `prompt`.
    response = post(gateway, account, {"model": MODEL}, "/completions")
    assert (response.status_code, response.json()["error"]["param"]) == (400, "prompt")


def test_a_null_where_a_value_is_required_is_still_a_400(gateway: str, account: Account) -> None:
    response = post(gateway, account, {"model": MODEL, "messages": None})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


@pytest.mark.parametrize(
    ("provider", "param"),
    [
        ({"only": []}, "provider.only"),
        ({"only": ["nobody"]}, "provider.only"),
        ({"order": ["featherless", "nobody"]}, "provider.order"),
        ({"ignore": ["NoSuchProvider"]}, "provider.ignore"),
        ({"ignore": ["openrouter", "featherless"]}, "provider.ignore"),
        ({"only": ["chutes"]}, "provider.only"),  # known, but it does not serve this model
        ({"only": ["openrouter"], "ignore": ["openrouter"]}, "provider.ignore"),
        ({"order": ["chutes"], "allow_fallbacks": False}, "provider.order"),
    ],
)
def test_provider_preferences_that_leave_no_provider_are_a_400_naming_the_field(
    gateway: str,
    account: Account,
    upstreams: Upstreams,
    provider: dict[str, Any],
    param: str,
) -> None:
    response = post(gateway, account, {"model": MODEL, "messages": HELLO, "provider": provider})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert response.headers["x-should-retry"] == "false"
    assert upstreams.primary.requests == upstreams.secondary.requests == []


def test_an_unknown_provider_name_is_quoted_briefly(gateway: str, account: Account) -> None:
    provider = {"order": ["x" * 100_000]}
    response = post(gateway, account, {"model": MODEL, "messages": HELLO, "provider": provider})
    assert response.status_code == 400
    assert len(response.json()["error"]["message"]) < 400


def test_a_huge_model_id_gives_a_short_error(gateway: str, account: Account) -> None:
    response = post(gateway, account, {"model": "m" * 1_048_576, "messages": HELLO})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert len(response.text) < 1_000
    assert response.headers["x-should-retry"] == "false"


def test_an_unknown_path_is_our_404_with_a_request_id(gateway: str, account: Account) -> None:
    response = httpx.get(f"{gateway}/nothing/{'p' * 5000}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-should-retry"] == "false"
    assert len(response.text) < 1_000


def test_a_known_path_with_the_wrong_method_is_a_405_with_allow(gateway: str) -> None:
    response = httpx.get(f"{gateway}/chat/completions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"  # OPTIONS: browsers' preflights
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-should-retry"] == "false"
