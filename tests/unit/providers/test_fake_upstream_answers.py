"""What the fake upstream answers unscripted (tests/fakes/openai_answers.py), driven by the
official `openai` SDK and read as raw SSE: a tool call for `tools`, JSON for
`response_format`, a tool-call stream opened as OpenAI opens it, base64 embeddings."""

from __future__ import annotations

import base64
import json
import struct
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import Behaviour, FakeUpstream, embedding, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
TIME: Any = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
USER: Any = [{"role": "user", "content": "Weather in Lyon?"}]


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with serve() as running:
        yield running


@pytest.fixture
def client(fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)


def test_tools_get_a_call_of_the_first_tool_with_arguments_its_schema_accepts(
    client: openai.OpenAI,
) -> None:
    answer = client.chat.completions.create(model="m", messages=USER, tools=[WEATHER, TIME])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "city", "days": 1}  # type: ignore[union-attr]
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 4  # the arguments' words


def test_tool_choice_picks_the_named_tool_and_none_answers_text(client: openai.OpenAI) -> None:
    named = client.chat.completions.create(
        model="m",
        messages=USER,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    [call] = named.choices[0].message.tool_calls or []
    assert (call.function.name, call.function.arguments) == ("get_time", "{}")  # type: ignore[union-attr]
    text = client.chat.completions.create(
        model="m", messages=USER, tools=[WEATHER], tool_choice="none"
    )
    assert text.choices[0].message.content == "Weather in Lyon?"
    assert text.choices[0].message.tool_calls is None


def test_a_scripted_answer_wins_over_the_tools(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(content="scripted"))
    answer = client.chat.completions.create(model="m", messages=USER, tools=[WEATHER])
    assert answer.choices[0].message.content == "scripted"
    assert answer.choices[0].message.tool_calls is None


def test_response_formats_get_json(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"seating": {"enum": ["terrace", "inside"]}, "guests": {"type": "integer"}},
    }
    shaped = client.chat.completions.create(
        model="m",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "b", "schema": schema}},
    )
    assert json.loads(shaped.choices[0].message.content or "") == {
        "seating": "terrace",
        "guests": 1,
    }
    anything = client.chat.completions.create(
        model="m", messages=USER, response_format={"type": "json_object"}
    )
    assert json.loads(anything.choices[0].message.content or "") == {"echo": "Weather in Lyon?"}


def test_a_tool_call_stream_opens_with_the_role_and_the_call_as_openai_streams_it(
    fake: FakeUpstream,
) -> None:
    body = {
        "model": "m",
        "messages": USER,
        "tools": [WEATHER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{fake.base_url}/chat/completions", json=body) as answer:
        lines = [line for line in answer.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    first = chunks[0]["choices"][0]["delta"]
    assert (first["role"], first["content"], first["refusal"]) == ("assistant", None, None)
    [opening] = first["tool_calls"]
    assert opening["index"] == 0
    assert opening["id"].startswith("call_")
    assert opening["function"] == {"name": "get_weather", "arguments": ""}
    pieces = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-2]]
    assert len(pieces) > 1
    assert all(set(p) == {"index", "function"} for p in pieces)
    arguments = "".join(p["function"]["arguments"] for p in pieces)
    assert json.loads(arguments) == {"city": "city", "days": 1}
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_embeddings_come_in_base64_when_asked(fake: FakeUpstream) -> None:
    body = {"model": "e", "input": ["a b", "c"], "encoding_format": "base64"}
    answer = httpx.post(f"{fake.base_url}/embeddings", json=body).json()
    for i, text in enumerate(["a b", "c"]):
        packed = base64.b64decode(answer["data"][i]["embedding"])
        assert packed == struct.pack("<4f", *embedding(text, i))
