"""The official `openai` SDK against the running gateway: answers,
streams, tools, and every refusal raising the SDK's own exception class."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest

from gatewayz import db
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, new_account, prompt_bound
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "hello there world"}]


def usage_rows(account: Account) -> list[tuple[object, ...]]:
    return db.execute(
        """SELECT provider, input_tokens, output_tokens, cost_nanos, status, streamed, finish_reason
             FROM usage_records WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def test_an_answer_carries_its_cost_and_the_balance_drops_by_exactly_that(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    before = account.balance()
    answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "hello there world"
    usage = answer.usage
    assert usage is not None
    expected = usage.prompt_tokens * INPUT_NANOS + usage.completion_tokens * OUTPUT_NANOS
    assert round(usage.cost * 1e9) == expected  # type: ignore[attr-defined]
    assert before - account.balance() == expected
    assert usage_rows(account) == [
        ("openrouter", usage.prompt_tokens, usage.completion_tokens, expected, 200, False, "stop")
    ]
    # The provider got the upstream model id and usage accounting asked for.
    sent = upstreams.primary.last.json
    assert sent["model"] == "openrouter/echo"
    assert sent["messages"] == HELLO


def test_a_stream_with_include_usage_ends_with_openais_usage_chunk(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    before = account.balance()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "hello there world"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    cost = round(last.usage.cost * 1e9)  # type: ignore[attr-defined]
    assert (
        cost == last.usage.prompt_tokens * INPUT_NANOS + last.usage.completion_tokens * OUTPUT_NANOS
    )
    assert before - account.balance() == cost
    assert upstreams.primary.last.json["stream_options"] == {"include_usage": True}
    assert usage_rows(account)[0][5] is True  # streamed


def test_a_stream_without_include_usage_shows_none_but_is_charged(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    before = account.balance()
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Usage was asked of the provider anyway, and billed.
    assert upstreams.primary.last.json["stream_options"] == {"include_usage": True}
    charged = before - account.balance()
    assert charged > 0
    assert usage_rows(account)[0][3] == charged


def test_tools_pass_through_both_ways(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    upstreams.primary.enqueue(Behaviour(tool_calls=[call]), Behaviour(tool_calls=[call]))
    answer = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        tools=tools,
        tool_choice="auto",
        seed=7,
        response_format={"type": "text"},  # type: ignore[arg-type]
    )
    (got,) = answer.choices[0].message.tool_calls or []
    assert got.function.name == "get_weather"
    assert got.function.arguments == '{"city": "Paris"}'
    assert answer.choices[0].finish_reason == "tool_calls"
    sent = upstreams.primary.last.json
    assert sent["tools"] == tools
    assert (sent["tool_choice"], sent["seed"], sent["response_format"]) == (
        "auto",
        7,
        {"type": "text"},
    )
    with client.chat.completions.stream(model=MODEL, messages=HELLO, tools=tools) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    (streamed,) = final.choices[0].message.tool_calls or []
    assert streamed.function.arguments == '{"city": "Paris"}'


def test_legacy_completions_are_served_and_billed(gateway: str, account: Account) -> None:
    client = openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)
    before = account.balance()
    answer = client.completions.create(model=MODEL, prompt="say this back")
    assert answer.choices[0].text == "say this back"
    usage = answer.usage
    assert usage is not None
    expected = usage.prompt_tokens * INPUT_NANOS + usage.completion_tokens * OUTPUT_NANOS
    assert round(usage.cost * 1e9) == expected  # type: ignore[attr-defined]
    assert before - account.balance() == expected


def test_a_wrong_key_is_an_authentication_error(gateway: str) -> None:
    client = openai.OpenAI(base_url=gateway, api_key="gw_live_" + "x" * 32, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_api_key"


def test_no_credit_is_a_402_naming_its_source(gateway: str) -> None:
    broke = new_account(credit_nanos=0)
    client = openai.OpenAI(base_url=gateway, api_key=broke.secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 402
    assert caught.value.code == "insufficient_credits"
    assert caught.value.body["metadata"] == {"limit_source": "credits"}  # type: ignore[index]
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_a_key_without_the_chat_scope_is_a_permission_error(gateway: str) -> None:
    reader = new_account(scopes=("models:read",))
    client = openai.OpenAI(base_url=gateway, api_key=reader.secret, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.code == "scope_denied"


def test_an_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nobody/nothing", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


def test_a_rate_limited_key_gets_a_rate_limit_error_with_retry_after(gateway: str) -> None:
    limited = new_account(requests_per_minute=1)
    client = openai.OpenAI(base_url=gateway, api_key=limited.secret, max_retries=0)
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_a_bad_request_is_a_400_naming_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "wizard", "content": "x"}])  # type: ignore[arg-type]
    assert caught.value.param == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=0)  # type: ignore[arg-type]
    assert caught.value.param == "max_tokens"


def test_every_response_carries_a_request_id_and_rate_limit_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-request-id"].startswith("req_")
    for name in ("limit", "remaining", "reset"):
        assert raw.headers[f"x-ratelimit-{name}-requests"]
        assert raw.headers[f"x-ratelimit-{name}-tokens"]


def test_a_generation_can_be_looked_up_by_either_id(
    gateway: str, client: openai.OpenAI, account: Account
) -> None:
    import httpx

    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    answer = raw.parse()
    headers = {"authorization": f"Bearer {account.secret}"}
    for generation_id in (answer.id, raw.headers["x-request-id"]):
        found = httpx.get(f"{gateway}/generation", params={"id": generation_id}, headers=headers)
        assert found.status_code == 200, found.text
        data = found.json()["data"]
        assert data["request_id"] == raw.headers["x-request-id"]
        assert data["provider"] == "openrouter"
        assert data["tokens"]["prompt"] == answer.usage.prompt_tokens  # type: ignore[union-attr]
        assert data["total_cost"] == answer.usage.cost  # type: ignore[union-attr]
        assert data["streamed"] is False
    # Another account cannot see it.
    other = new_account()
    hidden = httpx.get(
        f"{gateway}/generation",
        params={"id": answer.id},
        headers={"authorization": f"Bearer {other.secret}"},
    )
    assert hidden.status_code == 404


def test_max_tokens_is_lowered_to_what_the_balance_affords(
    gateway: str, upstreams: Upstreams
) -> None:
    # The model's default output is 1,024 tokens; this balance pays for the prompt and 100.
    prompt = prompt_bound(HELLO)
    poor = new_account(credit_nanos=prompt * INPUT_NANOS + 100 * OUTPUT_NANOS)
    client = openai.OpenAI(base_url=gateway, api_key=poor.secret, max_retries=0)
    client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert upstreams.primary.last.json["max_tokens"] == 100
    # Asking explicitly for more than that is refused, not cut short.
    richer = new_account(credit_nanos=prompt * INPUT_NANOS + 100 * OUTPUT_NANOS)
    client = openai.OpenAI(base_url=gateway, api_key=richer.secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=101)  # type: ignore[arg-type]
    assert caught.value.status_code == 402
    assert "101 output tokens" in caught.value.message
    # Below the minimum output, even the default is refused.
    broke = new_account(credit_nanos=prompt * INPUT_NANOS + 5 * OUTPUT_NANOS)
    client = openai.OpenAI(base_url=gateway, api_key=broke.secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 402
