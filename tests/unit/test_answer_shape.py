"""Answers in OpenAI's shape: finish reasons and model ids."""

from __future__ import annotations

import pytest

from gatewayz.chat import answer_shape


@pytest.mark.parametrize(
    ("native", "openai"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("STOP", "stop"),
        ("eos", "stop"),
        ("max_tokens", "length"),
        ("MAX_TOKENS", "length"),
        ("tool_use", "tool_calls"),
        ("SAFETY", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_a_providers_finish_reason_becomes_openais_and_is_kept_as_native(
    native: str, openai: str
) -> None:
    choice = answer_shape.choice({"index": 0, "finish_reason": native})
    assert choice == {"index": 0, "finish_reason": openai, "native_finish_reason": native}


@pytest.mark.parametrize("reason", [*sorted(answer_shape.OPENAI_REASONS), "error", None])
def test_openais_own_reasons_and_none_are_left_alone(reason: str | None) -> None:
    assert answer_shape.choice({"finish_reason": reason}) == {"finish_reason": reason}


def test_a_native_reason_the_provider_sent_is_kept() -> None:
    # OpenRouter already normalises: its own native reason is the more precise one.
    choice = {"finish_reason": "stop", "native_finish_reason": "end_turn"}
    assert answer_shape.choice(dict(choice)) == choice


def test_a_chunk_names_the_catalog_model() -> None:
    chunk = {"model": "@openai/gpt-4o-mini-2024-07-18", "choices": [{"finish_reason": "eos"}]}
    shaped = answer_shape.shape(chunk, "openai/gpt-4o-mini")
    assert shaped["model"] == "openai/gpt-4o-mini"
    assert shaped["choices"] == [{"finish_reason": "stop", "native_finish_reason": "eos"}]
