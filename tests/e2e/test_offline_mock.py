"""The official `openai` SDK against `gatewayz dev`'s local gateway with no provider key:
the offline `mock/echo` calls tools, answers structured output, n choices, stop and
logprobs through the whole chat path, and each answer is billed for what it output;
`provider.require_parameters` refuses what the model's `supported_parameters` leave out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import httpx
import openai
import pydantic
import pytest

from gatewayz import db
from tests.e2e.conftest import INPUT_NANOS, OUTPUT_NANOS, Account

GATEWAY = "offline"  # the conftest fixtures talk to `gatewayz dev` with the mock

if TYPE_CHECKING:
    from openai.types import CompletionUsage

MODEL = "mock/echo"
USER: Any = [{"role": "user", "content": "Book a table for two in Lyon"}]
# What the mock honours, each exercised below or in tests/unit/providers/test_mock_features.py.
HONOURED = {
    "max_tokens", "n", "stop", "seed", "logprobs", "top_logprobs", "tools", "tool_choice",
    "parallel_tool_calls", "response_format", "structured_outputs",
}  # fmt: skip


class BookTable(pydantic.BaseModel):
    city: str
    guests: int = pydantic.Field(ge=1, le=12)
    seating: Literal["inside", "terrace"]


class Booking(pydantic.BaseModel):
    restaurant: str
    confirmed: bool
    courses: list[str]


BOOK: Any = openai.pydantic_function_tool(BookTable)


def _cost(usage: CompletionUsage | None) -> int:
    """The answer's own `usage.cost` in nanos, checked against its token counts."""
    assert usage is not None
    cost = round(usage.cost * 1e9)  # type: ignore[attr-defined]
    assert cost == usage.prompt_tokens * INPUT_NANOS + usage.completion_tokens * OUTPUT_NANOS
    return cost


def _recorded(account: Account) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT output_tokens, finish_reason, streamed FROM usage_records
            WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def test_the_model_lists_what_it_honours(offline: str) -> None:
    listed = httpx.get(f"{offline}/models/{MODEL}").json()
    assert set(listed["supported_parameters"]) == HONOURED


def test_a_tool_call_is_parsed_by_the_sdk_and_billed(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    completion = client.chat.completions.parse(model=MODEL, messages=USER, tools=[BOOK])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "BookTable"
    assert isinstance(call.function.parsed_arguments, BookTable)
    assert completion.usage is not None
    # The arguments' words, and one for the name.
    assert completion.usage.completion_tokens == len(call.function.arguments.split()) + 1
    assert before - account.balance() == _cost(completion.usage)
    assert _recorded(account) == [(completion.usage.completion_tokens, "tool_calls", False)]


def test_a_streamed_tool_call_accumulates_in_the_sdk_and_is_billed(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    with client.chat.completions.stream(
        model=MODEL, messages=USER, tools=[BOOK], stream_options={"include_usage": True}
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in kinds
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert isinstance(calls[0].function.parsed_arguments, BookTable)
    assert final.choices[0].finish_reason == "tool_calls"
    assert before - account.balance() == _cost(final.usage)
    assert _recorded(account) == [(final.usage.completion_tokens, "tool_calls", True)]  # type: ignore[union-attr]


def test_structured_output_is_parsed_into_the_pydantic_model(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    completion = client.chat.completions.parse(model=MODEL, messages=USER, response_format=Booking)
    booking = completion.choices[0].message.parsed
    assert isinstance(booking, Booking)
    assert booking.confirmed is True
    assert len(booking.courses) == 1
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == booking.model_dump()
    beta = client.beta.chat.completions.parse(model=MODEL, messages=USER, response_format=Booking)
    assert beta.choices[0].message.parsed == booking
    assert before - account.balance() == _cost(completion.usage) + _cost(beta.usage)


def test_n_choices_are_each_billed(client: openai.OpenAI, account: Account) -> None:
    before = account.balance()
    one = client.chat.completions.create(model=MODEL, messages=USER)
    three = client.chat.completions.create(model=MODEL, messages=USER, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert {c.message.content for c in three.choices} == {one.choices[0].message.content}
    assert one.usage is not None
    assert three.usage is not None
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens
    stream = client.chat.completions.create(
        model=MODEL, messages=USER, n=3, stream=True, stream_options={"include_usage": True}
    )
    texts: dict[int, str] = {}
    usage = None
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
        usage = chunk.usage or usage
    assert texts == dict.fromkeys(range(3), one.choices[0].message.content)
    assert usage is not None
    assert usage.completion_tokens == three.usage.completion_tokens
    paid = _cost(one.usage) + _cost(three.usage) + _cost(usage)
    assert before - account.balance() == paid


def test_stop_and_logprobs_pass_through_the_gateway(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=USER, stop=[" in"], logprobs=True, top_logprobs=2
    )
    choice = completion.choices[0]
    assert choice.message.content == "Book a table for two"
    assert choice.finish_reason == "stop"
    assert choice.logprobs is not None
    assert choice.logprobs.content is not None
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob < 0 for t in choice.logprobs.content)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(choice.logprobs.content)


def test_require_parameters_refuses_an_unsupported_parameter_and_charges_nothing(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            tools=[BOOK],
            temperature=0.2,
            extra_body={"provider": {"require_parameters": True}},
        )
    assert refused.value.param == "temperature"
    assert "temperature" in refused.value.message
    assert account.balance() == before
    assert _recorded(account) == []


def test_require_parameters_serves_what_the_model_supports(
    client: openai.OpenAI, account: Account
) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=[BOOK],
        tool_choice="required",
        n=2,
        seed=7,
        max_completion_tokens=64,
        extra_body={"provider": {"require_parameters": True}},
    )
    assert [c.finish_reason for c in completion.choices] == ["tool_calls", "tool_calls"]


def test_without_require_parameters_an_unsupported_parameter_is_ignored(
    client: openai.OpenAI,
) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        temperature=0.2,
        extra_body={"provider": {"require_parameters": False}},
    )
    assert completion.choices[0].message.content == USER[0]["content"]


def test_require_parameters_must_be_a_boolean(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL, messages=USER, extra_body={"provider": {"require_parameters": "yes"}}
        )
    assert refused.value.param == "provider.require_parameters"


def test_a_refusal_of_the_mock_reaches_the_client_as_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            tools=[BOOK],
            tool_choice={"type": "function", "function": {"name": "cancel"}},
        )
    assert "tool_choice" in refused.value.message
