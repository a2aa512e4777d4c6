"""The offline `mock` behaves like a real model for what its `supported_parameters` list:
tools, tool_choice, response_format, n, stop and logprobs, in OpenAI's shapes as the
official SDK reads them (its tool-call accumulation and `parse` helpers included)."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import jsonschema
import openai
import pydantic
import pytest

from tests.unit.providers.mock_client import client, http

MESSAGE = "What is the weather in Paris today"
USER = [{"role": "user", "content": MESSAGE}]


class GetWeather(pydantic.BaseModel):
    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = pydantic.Field(ge=1, le=7)


WEATHER: Any = openai.pydantic_function_tool(GetWeather)
SEARCH: Any = {
    "type": "function",
    "function": {
        "name": "search",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "filters": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "exact": {"type": "boolean"},
            },
            "required": ["query", "filters", "exact"],
        },
    },
}


class Answer(pydantic.BaseModel):
    summary: str
    confidence: float = pydantic.Field(ge=0, le=1)
    sources: list[str]
    verdict: Literal["yes", "no"] | None


async def test_with_tools_it_calls_the_first_tool_with_arguments_of_its_schema() -> None:
    completion = await client().chat.completions.create(
        model="mock/echo", messages=USER, tools=[SEARCH, WEATHER]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "search"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, SEARCH["function"]["parameters"])
    assert completion.usage is not None
    # The name is a token; the arguments one a word.
    assert completion.usage.completion_tokens == 1 + len(call.function.arguments.split())


@pytest.mark.parametrize(
    ("tool_choice", "name"),
    [
        ("auto", "search"),
        ("required", "search"),
        ({"type": "function", "function": {"name": "GetWeather"}}, "GetWeather"),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "required", "tools": [WEATHER]},
            },
            "GetWeather",
        ),
    ],
)
async def test_tool_choice_picks_the_tool(tool_choice: Any, name: str) -> None:
    completion = await client().chat.completions.create(
        model="mock/echo", messages=USER, tools=[SEARCH, WEATHER], tool_choice=tool_choice
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert [c.function.name for c in calls] == [name]  # type: ignore[union-attr]


async def test_a_function_without_parameters_is_called_with_an_empty_object() -> None:
    ping = {"type": "function", "function": {"name": "ping"}}
    completion = await client().chat.completions.create(
        model="mock/echo", messages=USER, tools=[ping]
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.arguments == "{}"  # type: ignore[union-attr]


async def test_the_sdk_parses_a_strict_tools_arguments_into_its_model() -> None:
    completion = await client().chat.completions.parse(
        model="mock/echo", messages=USER, tools=[WEATHER]
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    parsed = calls[0].function.parsed_arguments
    assert isinstance(parsed, GetWeather)
    assert parsed.unit == "celsius"  # an enum's first value
    assert 1 <= parsed.days <= 7


async def test_tool_choice_none_answers_text() -> None:
    completion = await client().chat.completions.create(
        model="mock/echo", messages=USER, tools=[SEARCH], tool_choice="none"
    )
    assert completion.choices[0].message.content == MESSAGE
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [SEARCH], "tool_choice": {"type": "function", "function": {"name": "x"}}},
         "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [SEARCH], "tool_choice": "sometimes"}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"stop": [1]}, "stop"),
        ({"n": 0}, "n"),
    ],
)  # fmt: skip
async def test_what_openai_refuses_is_a_400_naming_the_parameter(
    fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await client().chat.completions.create(model="mock/echo", messages=USER, **fields)
    assert raised.value.param == param
    assert raised.value.type == "invalid_request_error"


async def test_a_tool_call_streams_as_openai_streams_it() -> None:
    body = {"model": "mock/echo", "messages": USER, "tools": [SEARCH], "stream": True}
    async with http() as raw, raw.stream("POST", "/chat/completions", json=body) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    head = deltas[0]["tool_calls"][0]
    assert deltas[0]["role"] == "assistant"
    assert head["index"] == 0
    assert head["type"] == "function"
    assert head["id"].startswith("call_")
    assert head["function"] == {"name": "search", "arguments": ""}
    fragments = [d["tool_calls"][0] for d in deltas[1:-1]]
    assert all(set(f) == {"index", "function"} and f["index"] == 0 for f in fragments)
    assert len(fragments) > 1  # the arguments come in pieces
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    jsonschema.validate(json.loads(arguments), SEARCH["function"]["parameters"])
    assert deltas[-1] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_the_sdks_stream_helper_accumulates_the_tool_call_of_every_choice() -> None:
    async with client().chat.completions.stream(
        model="mock/echo", messages=USER, tools=[WEATHER], n=2
    ) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in events
    assert [c.index for c in final.choices] == [0, 1]
    for choice in final.choices:
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls is not None
        assert isinstance(choice.message.tool_calls[0].function.parsed_arguments, GetWeather)
    ids = {c.message.tool_calls[0].id for c in final.choices if c.message.tool_calls}
    assert len(ids) == 2


async def test_max_tokens_cuts_a_tool_call_short_with_length() -> None:
    completion = await client().chat.completions.create(
        model="mock/echo", messages=USER, tools=[SEARCH], max_tokens=3
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.tool_calls is not None
    arguments = choice.message.tool_calls[0].function.arguments  # type: ignore[union-attr]
    assert len(arguments.split()) == 2
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(arguments)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3


async def test_response_format_json_schema_is_parsed_by_the_sdk_streamed_or_not() -> None:
    completion = await client().chat.completions.parse(
        model="mock/echo", messages=USER, response_format=Answer
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Answer)
    assert 0 <= parsed.confidence <= 1
    assert completion.usage is not None
    content = completion.choices[0].message.content
    assert content is not None
    assert completion.usage.completion_tokens == len(content.split())
    async with client().chat.completions.stream(
        model="mock/echo", messages=USER, response_format=Answer
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == parsed


async def test_response_format_json_object_is_json() -> None:
    completion = await client().chat.completions.create(
        model="mock/echo", messages=USER, response_format={"type": "json_object"}
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"echo": MESSAGE}


async def test_n_gives_n_choices_and_counts_each_in_usage() -> None:
    sdk = client()
    completion = await sdk.chat.completions.create(model="mock/echo", messages=USER, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert {c.message.content for c in completion.choices} == {MESSAGE}
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3 * len(MESSAGE.split())
    stream = await sdk.chat.completions.create(
        model="mock/echo",
        messages=USER,
        n=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    usage = None
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            finishes[choice.index] = choice.finish_reason or finishes.get(choice.index, "")
        usage = chunk.usage or usage
    assert texts == dict.fromkeys(range(3), MESSAGE)
    assert finishes == dict.fromkeys(range(3), "stop")
    assert usage is not None
    assert usage.completion_tokens == completion.usage.completion_tokens


@pytest.mark.parametrize(
    ("stop", "text"),
    [
        ("Paris", "What is the weather in "),
        (["today", " weather"], "What is the"),
        (["nowhere"], MESSAGE),
    ],
)
async def test_stop_cuts_before_the_first_stop_sequence(stop: str | list[str], text: str) -> None:
    sdk = client()
    completion = await sdk.chat.completions.create(model="mock/echo", messages=USER, stop=stop)
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(text.split()) + text.endswith(" ")
    stream = await sdk.chat.completions.create(
        model="mock/echo", messages=USER, stop=stop, stream=True
    )
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert streamed == text


async def test_stop_then_max_tokens_finishes_with_length() -> None:
    completion = await client().chat.completions.create(
        model="mock/echo", messages=USER, stop="today", max_tokens=2
    )
    assert completion.choices[0].message.content == "What is"
    assert completion.choices[0].finish_reason == "length"


def _check_alternatives(token: str, logprob: float, top: list[tuple[str, float]]) -> None:
    assert logprob < 0
    assert top[0] == (token, logprob)  # the chosen token is the likeliest
    assert len({t for t, _ in top}) == len(top)
    assert [lp for _, lp in top] == sorted((lp for _, lp in top), reverse=True)
    assert sum(math.exp(lp) for _, lp in top) <= 1


async def test_logprobs_are_openais_per_token_shape() -> None:
    sdk = client()
    completion = await sdk.chat.completions.create(
        model="mock/echo", messages=USER, logprobs=True, top_logprobs=3
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == MESSAGE
    for entry in logprobs.content:
        assert bytes(entry.bytes or []) == entry.token.encode()
        assert len(entry.top_logprobs) == 3
        _check_alternatives(
            entry.token, entry.logprob, [(t.token, t.logprob) for t in entry.top_logprobs]
        )
    stream = await sdk.chat.completions.create(
        model="mock/echo", messages=USER, logprobs=True, top_logprobs=3, stream=True
    )
    streamed = []
    async for chunk in stream:
        choice = chunk.choices[0]
        if choice.delta.content:
            assert choice.logprobs is not None
            assert choice.logprobs.content is not None
            assert [t.token for t in choice.logprobs.content] == [choice.delta.content]
            streamed += choice.logprobs.content
    assert streamed == logprobs.content


async def test_logprobs_without_top_logprobs_list_no_alternatives_and_none_unasked() -> None:
    sdk = client()
    asked = await sdk.chat.completions.create(model="mock/echo", messages=USER, logprobs=True)
    assert asked.choices[0].logprobs is not None
    assert [e.top_logprobs for e in asked.choices[0].logprobs.content or []] == [[]] * len(
        MESSAGE.split()
    )
    unasked = await sdk.chat.completions.create(model="mock/echo", messages=USER)
    assert unasked.choices[0].logprobs is None


async def test_legacy_completions_honour_n_stop_and_logprobs() -> None:
    sdk = client()
    completion = await sdk.completions.create(
        model="mock/echo", prompt=MESSAGE, n=2, stop=" today", logprobs=2
    )
    text = "What is the weather in Paris"
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, text, "stop"),
        (1, text, "stop"),
    ]
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens
    assert logprobs.token_logprobs
    assert "".join(logprobs.tokens) == text
    assert logprobs.text_offset == [text.index(t) for t in logprobs.tokens]
    for token, logprob, top in zip(
        logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs or [], strict=True
    ):
        _check_alternatives(token, logprob, list(top.items()))
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2 * len(text.split())
    stream = await sdk.completions.create(
        model="mock/echo", prompt=MESSAGE, stop=" today", logprobs=2, stream=True
    )
    tokens: list[str] = []
    async for chunk in stream:
        streamed = chunk.choices[0].logprobs
        tokens += (streamed.tokens or []) if streamed is not None else []
    assert tokens == logprobs.tokens
