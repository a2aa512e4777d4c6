"""Counting delivered output the provider did not count (gatewayz/chat/output_meter.py)."""

from __future__ import annotations

from gatewayz.chat.output_meter import OutputMeter


def test_every_kind_of_generated_text_counts() -> None:
    meter = OutputMeter()
    meter.choice({"delta": {"role": "assistant", "content": ""}})  # says nothing: not a piece
    meter.choice({"delta": {"reasoning": "let me think"}})  # 12 bytes
    meter.choice({"delta": {"reasoning_content": "more"}})  # 4
    meter.choice({"delta": {"content": "Hello"}})  # 5
    meter.choice({"delta": {"refusal": "no"}})  # 2
    call = {"index": 0, "function": {"name": "get_weather", "arguments": '{"city":'}}
    meter.choice({"delta": {"tool_calls": [call]}})  # 11 + 8
    meter.choice({"text": "legacy"})  # 6
    assert (meter.bytes, meter.pieces) == (48, 6)
    assert meter.tokens == 12


def test_a_whole_answer_counts_its_message() -> None:
    meter = OutputMeter()
    meter.choice({"message": {"role": "assistant", "content": "abcdefgh", "reasoning": "ab"}})
    assert (meter.bytes, meter.pieces, meter.tokens) == (10, 1, 3)


def test_never_fewer_tokens_than_pieces() -> None:
    # Chinese: three bytes a character, about a token each; one character per chunk.
    meter = OutputMeter()
    for character in "你好世界和平":
        meter.choice({"delta": {"content": character}})
    assert meter.bytes == 18
    assert meter.tokens == 6


def test_malformed_deltas_count_nothing() -> None:
    meter = OutputMeter()
    meter.choice({"delta": {"content": 5, "tool_calls": "x"}})
    meter.choice({"delta": {"tool_calls": [None, {"function": "x"}]}})
    assert (meter.bytes, meter.pieces, meter.tokens) == (0, 0, 0)
