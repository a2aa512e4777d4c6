"""The Responses API's wire shapes, checked strictly against the `openai` SDK's own types
(pydantic validation, every required field): a chat stream translated event by event
(text, refusal, a message followed by tool calls, a cut-short answer, a keep-alive, an
in-band error), and a whole chat completion translated into one Response."""

from __future__ import annotations

import json
from typing import Any

import pydantic
from openai.types.responses import Response, ResponseStreamEvent

from gatewayz.chat import responses_object
from gatewayz.chat.responses_stream import Translator
from gatewayz.chat.streaming import SSEDecoder, encode

EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
ECHO: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "temperature": None,
    "top_p": None,
    "tools": [],
    "tool_choice": "auto",
    "text": {"format": {"type": "text"}},
    "store": False,
    "user": None,
}
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13, "cost": 0.000017}


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"id": "gen-1", "object": "chat.completion.chunk", "model": "m/x", "choices": [choice]}


def _translate(*chunks: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    """The events the client gets for this chat stream (then `[DONE]`), each validated."""
    translator = Translator(responses_object.skeleton("resp_1", "m/x", ECHO))
    wire = b"".join(c if isinstance(c, bytes) else encode(c) for c in chunks)
    out = b""
    for event in SSEDecoder().feed(wire + b"data: [DONE]\n\n"):
        out += translator.on(event)
    events = []
    for event in SSEDecoder().feed(out):
        if event.data is None:
            continue
        lines = event.raw.split(b"\n")
        payload = json.loads(event.data)
        assert lines[0] == b"event: " + payload["type"].encode()
        EVENTS.validate_python(payload)  # raises on any missing or mistyped field
        events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_text_deltas_become_one_message_item_and_a_completed_response() -> None:
    events = _translate(
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk(finish="stop"),
        {"id": "gen-1", "object": "chat.completion.chunk", "choices": [], "usage": USAGE},
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[6]["text"] == "Hello"
    final = Response.model_validate(events[-1]["response"])
    assert final.status == "completed"
    assert final.output_text == "Hello"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 4)
    assert final.usage.cost == 0.000017  # type: ignore[attr-defined]
    assert events[2]["item"]["id"] == events[-1]["response"]["output"][0]["id"]


def test_a_message_then_two_tool_calls_are_three_items_in_order() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    events = _translate(
        _chunk({"content": "Let me look."}),
        _chunk({"tool_calls": [call]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "g"}}]}),
        _chunk(finish="tool_calls"),
    )
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["output_index"], e["name"], e["arguments"]) for e in done] == [
        (1, "f", '{"a":1}'),
        (2, "g", ""),
    ]
    final = Response.model_validate(events[-1]["response"])
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    assert [getattr(i, "call_id", None) for i in final.output] == [None, "call_1", "call_2"]
    assert final.usage is None  # the provider reported none in this stream


def test_a_refusal_is_a_refusal_part() -> None:
    events = _translate(_chunk({"refusal": "I can't"}), _chunk(finish="stop"))
    kinds = [e["type"] for e in events]
    assert "response.refusal.delta" in kinds
    assert "response.refusal.done" in kinds
    final = Response.model_validate(events[-1]["response"])
    assert final.output[0].content[0].type == "refusal"  # type: ignore[union-attr]


def test_an_answer_cut_by_the_cap_ends_with_response_incomplete() -> None:
    events = _translate(_chunk({"content": "a b"}), _chunk(finish="length"))
    assert events[-1]["type"] == "response.incomplete"
    final = Response.model_validate(events[-1]["response"])
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"


def test_a_keep_alive_passes_and_an_error_ends_the_stream_failed() -> None:
    error = {"message": "The provider's stream broke off.", "code": "upstream_error"}
    translator = Translator(responses_object.skeleton("resp_1", "m/x", ECHO))
    wire = encode(_chunk({"content": "x"})) + b": keep-alive\n\n" + encode({"error": error})
    out = b"".join(translator.on(e) for e in SSEDecoder().feed(wire + b"data: [DONE]\n\n"))
    assert b": keep-alive\n\n" in out
    events = [json.loads(e.data) for e in SSEDecoder().feed(out) if e.data is not None]
    for event in events:
        EVENTS.validate_python(event)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert (events[-2]["code"], events[-2]["message"]) == ("upstream_error", error["message"])
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": error["message"]}
    assert b"[DONE]" not in out


def test_a_whole_chat_completion_is_a_valid_response() -> None:
    completion = {
        "id": "gen-2",
        "object": "chat.completion",
        "model": "m/x",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Calling.",
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
            }
        ],
        "usage": {
            **USAGE,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
        "provider": "mock",
    }
    done = responses_object.from_chat(completion, responses_object.skeleton("resp_2", "m/x", ECHO))
    final = Response.model_validate(done)
    assert final.status == "completed"
    assert final.output_text == "Calling."
    assert final.output[1].type == "function_call"
    assert final.output[1].call_id == "call_9"
    assert final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == 3
    assert final.usage.output_tokens_details.reasoning_tokens == 1
    assert done["provider"] == "mock"
    assert done["usage"]["cost"] == 0.000017
