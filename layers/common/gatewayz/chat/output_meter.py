"""Counting delivered output when the provider has not said (docs/architecture.md, step 8).

Used for a stream whose provider never sent usage, a stream cut off by a dead client or
the gateway's own deadline, and a stream's progress recorded on its hold. Everything the
model generated counts: content, reasoning (`reasoning`, `reasoning_content`),
refusals, tool calls (names and arguments), legacy `text`. The estimate is about four
bytes a token, and never fewer tokens than pieces of output received (a piece of
Chinese text is a token in three bytes, not four).
"""

from __future__ import annotations

from typing import Any

from gatewayz.chat.prompt_size import TYPICAL_BYTES_PER_TOKEN

_TEXT_FIELDS = frozenset(("content", "reasoning", "reasoning_content", "refusal", "text"))


class OutputMeter:
    """Bytes and pieces of output seen so far."""

    __slots__ = ("bytes", "pieces")

    def __init__(self) -> None:
        self.bytes = 0
        self.pieces = 0

    def delta(self, delta: dict[str, Any]) -> None:
        """Count a chunk's `delta` (or a whole answer's `message`)."""
        size = 0
        for name, value in delta.items():  # a chunk's delta has a key or two, not five
            if name in _TEXT_FIELDS and isinstance(value, str):
                size += _size(value)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    for part in (function.get("name"), function.get("arguments")):
                        if isinstance(part, str):
                            size += _size(part)
        if size:
            self.bytes += size
            self.pieces += 1

    def choice(self, choice: dict[str, Any]) -> None:
        """Count one choice of a chunk or an answer: its delta, message or legacy text."""
        for name in ("delta", "message"):
            part = choice.get(name)
            if isinstance(part, dict):
                self.delta(part)
                return
        self.delta(choice)  # legacy completions: `text` on the choice itself

    @property
    def tokens(self) -> int:
        """The output estimate in tokens."""
        return max(-(-self.bytes // TYPICAL_BYTES_PER_TOKEN), self.pieces)


def _size(text: str) -> int:
    """UTF-8 bytes of `text`; a lone surrogate (a provider's token that split an emoji,
    which the chat path passes on) counts its three bytes instead of raising."""
    if text.isascii():
        return len(text)
    return len(text.encode(errors="surrogatepass"))
