"""The official `openai` SDK's Responses API (`client.responses.create`, `.parse`,
`.stream`) against `gatewayz dev`'s local gateway with no provider key: the offline
`mock/echo` answers text, tool calls and structured output through the whole chat path,
translated into Response objects and events, each billed for what it output."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import openai
import pydantic
import pytest

from gatewayz import db
from tests.e2e.conftest import INPUT_NANOS, OUTPUT_NANOS, Account

GATEWAY = "offline"  # the conftest fixtures talk to `gatewayz dev` with the mock

if TYPE_CHECKING:
    from openai.types.responses import ResponseUsage

MODEL = "mock/echo"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Booking(pydantic.BaseModel):
    restaurant: str
    guests: int
    seating: Literal["inside", "terrace"]


def _cost(usage: ResponseUsage | None) -> int:
    """The answer's own `usage.cost` in nanos, checked against its token counts."""
    assert usage is not None
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    cost = round(usage.cost * 1e9)  # type: ignore[attr-defined]
    assert cost == usage.input_tokens * INPUT_NANOS + usage.output_tokens * OUTPUT_NANOS
    return cost


def _recorded(account: Account) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT input_tokens, output_tokens, finish_reason, streamed FROM usage_records
            WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def test_a_text_input_is_answered_as_a_response_and_billed(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    response = client.responses.create(model=MODEL, input="hello there gateway", store=False)
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == MODEL
    assert response.output_text == "hello there gateway"  # the mock echoes
    [item] = response.output
    assert item.type == "message"
    assert item.id.startswith("msg_")
    assert item.role == "assistant"
    assert item.content[0].type == "output_text"
    assert response.provider == "mock"  # type: ignore[attr-defined]
    assert response.usage is not None
    assert response.usage.output_tokens == 3
    assert before - account.balance() == _cost(response.usage)
    assert _recorded(account) == [
        (response.usage.input_tokens, response.usage.output_tokens, "stop", False)
    ]


def test_instructions_and_a_message_list_reach_the_model_as_chat_messages(
    client: openai.OpenAI, account: Account
) -> None:
    response = client.responses.create(
        model=MODEL,
        instructions="Answer briefly.",
        input=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "input_text", "text": "second question"}]},
        ],
        max_output_tokens=1,
    )
    # The mock echoes the last user message; one token allowed: cut short.
    assert response.output_text == "second"
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 1
    assert response.instructions == "Answer briefly."
    assert response.usage is not None
    # Four messages (system, user, assistant, user): the mock counts words + 4 each.
    assert response.usage.input_tokens == (2 + 2 + 2 + 2) + 4 * 4
    assert _recorded(account)[0][2] == "length"


def test_a_function_call_and_its_output_round_trip(client: openai.OpenAI, account: Account) -> None:
    before = account.balance()
    first = client.responses.create(model=MODEL, input="weather in Lyon", tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call"
    assert call.id is not None
    assert call.id.startswith("fc_")
    assert call.name == "get_weather"
    assert set(json.loads(call.arguments)) == {"city"}
    assert first.tools[0].type == "function"
    second = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "weather in Lyon"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny 21C"},
        ],
    )
    assert second.status == "completed"
    assert second.output_text  # the mock answers text once no tool is offered
    assert before - account.balance() == _cost(first.usage) + _cost(second.usage)
    assert [r[2] for r in _recorded(account)] == ["tool_calls", "stop"]


def test_structured_output_is_parsed_into_the_pydantic_model(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    response = client.responses.parse(model=MODEL, input="book a table", text_format=Booking)
    booking = response.output_parsed
    assert isinstance(booking, Booking)
    assert json.loads(response.output_text) == booking.model_dump()
    assert response.text is not None
    assert response.text.format is not None
    assert response.text.format.type == "json_schema"
    assert before - account.balance() == _cost(response.usage)


def test_a_stream_tells_the_responses_events_and_ends_with_usage(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    with client.responses.stream(model=MODEL, input="one two three four") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == final.output_text == "one two three four"
    assert final.id == events[0].response.id  # type: ignore[union-attr]
    assert final.status == "completed"
    assert before - account.balance() == _cost(final.usage)
    assert _recorded(account) == [(final.usage.input_tokens, 4, "stop", True)]  # type: ignore[union-attr]


def test_a_streamed_function_call_accumulates_in_the_sdk(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    stream = client.responses.create(
        model=MODEL, input="weather in Lyon", tools=[WEATHER], stream=True
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    completed = events[-1]
    assert completed.type == "response.completed"
    [call] = completed.response.output
    assert call.type == "function_call"
    assert call.arguments == done.arguments
    assert json.loads(call.arguments).keys() == {"city"}
    assert before - account.balance() == _cost(completed.response.usage)


def test_the_400s_name_the_responses_parameter(client: openai.OpenAI, account: Account) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": 5}, "input"),
        ({}, "input"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as raised:
            client.responses.create(model=MODEL, **body)
        assert raised.value.param == param, body
    assert _recorded(account) == []
