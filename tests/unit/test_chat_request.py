"""Reading a completion request (gatewayz/chat/request.py): strict JSON types for every
known field, and what the hold needs to know (outputs, caps, fees, prompt size)."""

from __future__ import annotations

from typing import Any

import pytest

from gatewayz import errors
from gatewayz.chat import request as chat_request

HELLO = [{"role": "user", "content": "hello"}]


def chat(**fields: Any) -> chat_request.CompletionRequest:
    return chat_request.parse({"model": "m/x", "messages": HELLO, **fields}, chat=True)


def legacy(**fields: Any) -> chat_request.CompletionRequest:
    return chat_request.parse({"model": "m/x", "prompt": "hi", **fields}, chat=False)


def refused(**fields: Any) -> errors.InvalidRequest:
    with pytest.raises(errors.InvalidRequest) as caught:
        chat(**fields)
    return caught.value


@pytest.mark.parametrize("value", ["5", 5.0, True, -1, 0, 2**62])
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_an_output_cap_must_be_a_positive_json_integer(field: str, value: object) -> None:
    assert refused(**{field: value}).param == field


@pytest.mark.parametrize("value", ["true", 1, "yes", 0])
def test_stream_must_be_a_json_boolean(value: object) -> None:
    assert refused(stream=value).param == "stream"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": True}, "n"),
        ({"n": 17}, "n"),
        ({"temperature": "0.5"}, "temperature"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 1]}, "stop[1]"),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ({"tools": [{"function": {}}]}, "tools[0].type"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"logit_bias": {"42": "high"}}, "logit_bias"),
        ({"parallel_tool_calls": "false"}, "parallel_tool_calls"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_a_known_field_of_the_wrong_type_is_named(fields: dict[str, Any], param: str) -> None:
    assert refused(**fields).param == param


def test_numbers_may_be_written_as_integers_and_nulls_mean_unset() -> None:
    request = chat(temperature=1, top_p=None, max_tokens=None, stream=None, n=None)
    assert (request.max_output_tokens, request.stream, request.outputs) == (None, False, 1)


def test_unknown_fields_pass_through_untouched() -> None:
    request = chat(top_k=40, repetition_penalty="anything", custom={"deep": [1, 2]})
    assert request.body["top_k"] == 40
    assert request.body["repetition_penalty"] == "anything"
    assert request.body["custom"] == {"deep": [1, 2]}


def test_the_cap_the_client_asked_for_in_either_field() -> None:
    assert chat().max_output_tokens is None
    assert chat(max_tokens=50).max_output_tokens == 50
    assert chat(max_completion_tokens=70).max_output_tokens == 70
    # Both: the newer field wins, as OpenAI reads it.
    assert chat(max_tokens=50, max_completion_tokens=70).max_output_tokens == 70


def test_how_many_outputs_the_provider_may_generate() -> None:
    assert chat(n=3).outputs == 3
    assert legacy(n=2).outputs == 2
    # best_of candidates are generated (and billed) even though n are returned.
    assert legacy(n=1, best_of=4).outputs == 4
    # A list prompt is one generation per entry, each with its n choices.
    assert legacy(prompt=["a", "b", "c"], n=2).outputs == 6
    assert legacy(prompt=[[1, 2], [3, 4]], best_of=3).outputs == 6
    # One list of token ids is one prompt.
    assert legacy(prompt=[1, 2, 3]).outputs == 1


def test_too_many_outputs_is_refused() -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        legacy(prompt=["x"] * 20, best_of=10)
    assert caught.value.param == "prompt"


def test_token_id_prompts_must_be_integers() -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        legacy(prompt=[1, True])
    assert caught.value.param is not None
    assert caught.value.param.startswith("prompt")


def test_a_prediction_is_output_beyond_the_cap() -> None:
    prediction = {"type": "content", "content": "x" * 100}
    # Its JSON bytes: every rejected predicted token is billed as output.
    assert chat(prediction=prediction).extra_output_tokens == 134
    assert chat().extra_output_tokens == 0


def test_fee_bearing_features_are_named_with_the_field_asking() -> None:
    request = chat(
        plugins=[{"id": "web"}, {"id": "file-parser"}],
        tools=[
            {"type": "function", "function": {"name": "f"}},
            {"type": "openrouter:web_search"},
            {"type": "code_interpreter"},
        ],
        service_tier="priority",
        modalities=["text", "audio"],
    )
    assert request.features == {
        "web_search": "plugins[0]",
        "file_parser": "plugins[1]",
        "tool:code_interpreter": "tools[2].type",
        "audio_output": "modalities",
        "service_tier:priority": "service_tier",
    }
    assert chat(service_tier="auto", tools=[{"type": "function"}]).features == {}
    assert chat(web_search_options={}).features == {"web_search": "web_search_options"}


def test_a_plugin_without_an_id_is_refused() -> None:
    assert refused(plugins=[{"max_results": 3}]).param == "plugins[0]"


@pytest.mark.parametrize("kind", ["input_audio", "file", "video_url", "document"])
def test_content_the_hold_cannot_bound_is_refused(kind: str) -> None:
    content = [{"type": "text", "text": "look"}, {"type": kind, kind: {"url": "https://x"}}]
    error = refused(messages=[{"role": "user", "content": content}])
    assert error.param == "messages[0].content[1].type"
    assert "cannot bound" in error.message


def test_an_earlier_audio_answer_in_the_history_is_refused() -> None:
    history = [{"role": "assistant", "audio": {"id": "audio_1"}}, *HELLO]
    assert refused(messages=history).param == "messages[0].audio"


def test_a_reasoning_budget_must_be_an_integer() -> None:
    assert refused(reasoning={"max_tokens": "100"}).param == "reasoning.max_tokens"
    assert (
        chat(reasoning={"effort": "high", "max_tokens": 100}).body["reasoning"]["max_tokens"] == 100
    )


def test_the_model_and_its_fallbacks() -> None:
    assert chat(models=["a/b", "m/x", "c/d"]).models == ("m/x", "a/b", "c/d")
    with pytest.raises(errors.InvalidRequest) as caught:
        chat_request.parse({"messages": HELLO}, chat=True)
    assert caught.value.param == "model"


def test_the_body_must_be_an_object() -> None:
    with pytest.raises(errors.InvalidRequest, match="JSON object"):
        chat_request.parse([HELLO], chat=True)
