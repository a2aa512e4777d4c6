"""`POST /v1/responses` against the running gateway in front of the fake providers: what
reaches the provider is the chat request the Responses request means (instructions as a
system message, flat tools nested, `text.format` as `response_format`, the output cap),
the provider's usage comes back in the Responses API's names with its exact cost, a
failing provider fails over and is charged once, a provider error mid-stream becomes
`error` and `response.failed`, and the refusals are the SDK's own exceptions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz import db
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, new_account
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 7,
    "total_tokens": 37,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 2},
}
TOOL: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
    "strict": False,
}


def _usage_rows(account: Account) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT endpoint, provider, input_tokens, output_tokens, cost_nanos, status, streamed
             FROM usage_records WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def test_the_provider_gets_the_chat_request_the_responses_request_means(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(content="answer", usage=USAGE))
    before = account.balance()
    response = client.responses.create(
        model=MODEL,
        instructions="Be terse.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "define cat"}]}],
        tools=[TOOL],
        tool_choice={"type": "function", "name": "lookup"},
        text={"format": {"type": "json_schema", "name": "word", "schema": {"type": "object"}}},
        max_output_tokens=50,
        temperature=0.5,
        metadata={"trace": "t1"},
    )
    sent = upstreams.primary.last
    assert sent.path == "/v1/chat/completions"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "define cat"}]},
    ]
    assert sent.json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a word up.",
                "parameters": TOOL["parameters"],
                "strict": False,
            },
        }
    ]
    assert sent.json["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert sent.json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "word", "schema": {"type": "object"}},
    }
    assert 50 in (sent.json.get("max_completion_tokens"), sent.json.get("max_tokens"))
    assert sent.json["temperature"] == 0.5
    assert "input" not in sent.json
    assert "instructions" not in sent.json
    assert response.output_text == "answer"
    assert response.metadata == {"trace": "t1"}
    assert response.temperature == 0.5
    assert response.usage is not None
    assert response.usage.input_tokens == 30
    assert response.usage.output_tokens == 7
    assert response.usage.total_tokens == 37
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    assert response.usage.input_tokens_details.cached_tokens == 0
    cost = 30 * INPUT_NANOS + 7 * OUTPUT_NANOS
    assert round(response.usage.cost * 1e9) == cost  # type: ignore[attr-defined]
    assert before - account.balance() == cost
    assert _usage_rows(account) == [("responses", "openrouter", 30, 5, cost, 200, False)]


def test_a_failing_provider_fails_over_and_the_response_is_charged_once(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=503))
    upstreams.secondary.enqueue(Behaviour(content="from the second", usage=USAGE))
    before = account.balance()
    response = client.responses.create(model=MODEL, input="hello")
    assert response.provider == "featherless"  # type: ignore[attr-defined]
    assert response.output_text == "from the second"
    assert before - account.balance() == 30 * INPUT_NANOS + 7 * OUTPUT_NANOS
    assert [r[1] for r in _usage_rows(account)] == ["featherless"]


def test_provider_tool_calls_become_function_call_items(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"word":"dog"}'},
        },
    ]
    upstreams.primary.enqueue(Behaviour(tool_calls=calls, finish_reason="tool_calls"))
    response = client.responses.create(model=MODEL, input="define two", tools=[TOOL])
    items = [(i.type, i.call_id, i.name, i.arguments) for i in response.output]  # type: ignore[union-attr]
    assert items == [
        ("function_call", "call_a", "lookup", "{}"),
        ("function_call", "call_b", "lookup", '{"word":"dog"}'),
    ]
    # The round trip: both calls in one assistant message, each output a tool message.
    upstreams.primary.enqueue(Behaviour(content="done"))
    client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "define two"},
            *[
                {"type": "function_call", "call_id": c, "name": n, "arguments": a}
                for _, c, n, a in items
            ],
            {"type": "function_call_output", "call_id": "call_a", "output": "a cat"},
            {"type": "function_call_output", "call_id": "call_b", "output": "a dog"},
        ],
    )
    messages = upstreams.primary.last.json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_a", "call_b"]
    assert (messages[2]["tool_call_id"], messages[2]["content"]) == ("call_a", "a cat")


def test_a_streamed_response_ends_with_the_providers_usage_and_cost(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(content="a b c", usage=USAGE))
    before = account.balance()
    events = list(client.responses.create(model=MODEL, input="go", stream=True))
    assert upstreams.primary.last.json["stream_options"] == {"include_usage": True}
    completed = events[-1]
    assert completed.type == "response.completed"
    usage = completed.response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (30, 7)
    cost = 30 * INPUT_NANOS + 7 * OUTPUT_NANOS
    assert round(usage.cost * 1e9) == cost  # type: ignore[attr-defined]
    assert before - account.balance() == cost
    assert completed.response.output_text == "a b c"


def test_a_provider_error_mid_stream_is_an_error_then_response_failed(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    # Spaced out, so the client has content before the error arrives.
    late_error = {"message": "boom", "code": 500}
    upstreams.primary.enqueue(
        Behaviour(mid_stream_error=late_error, usage_every_chunk=True, chunk_delay_s=0.05)
    )
    events = list(client.responses.create(model=MODEL, input="go", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert "response.completed" not in kinds
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"  # OpenAI's list of codes
    assert events[-2].code == "upstream_error"  # type: ignore[union-attr]
    assert "boom" not in failed.response.error.message  # never the provider's own words
    # What was delivered is billed.
    assert _usage_rows(account)[0][3] > 0


def test_refusals_before_the_answer_are_the_sdks_exceptions(
    gateway: str, upstreams: Upstreams
) -> None:
    broke = new_account(credit_nanos=0)
    sdk = openai.OpenAI(base_url=gateway, api_key=broke.secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.responses.create(model=MODEL, input="hi", max_output_tokens=1000)
    assert raised.value.status_code == 402
    assert "max_output_tokens" in raised.value.message
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="nobody/nothing", input="hi")
    # Named as the Responses request calls them, not as the chat request they became.
    too_long = [{"role": "user", "content": "word " * 40_000}]
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model=MODEL, input=too_long)  # type: ignore[arg-type]
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.param == "input"
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model=MODEL, input="hi", max_output_tokens=5000)
    assert refused.value.param == "max_output_tokens"
    # No key: refused before the body is read (even a bad one).
    answer = httpx.post(f"{gateway}/responses", json={"previous_response_id": "resp_1"})
    assert answer.status_code == 401
    assert upstreams.primary.requests == []
