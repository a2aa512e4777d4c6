"""How big a prompt is (docs/architecture.md, step 5): an upper bound for the credit hold, and a
typical count for everything that should not be pessimistic.

The bound never undercounts: a byte-level tokenizer makes at most one token per UTF-8
byte, and every chat template adds a few tokens per message and a preamble; token-id
prompts get a margin for the tokens a provider adds. Images count apart, each at the
model's published per-image maximum. Inputs that no count of the request can bound
(files and audio the provider fetches or decodes, video) are refused: a hold that does
not bound the cost is no hold.

The typical count (about four bytes a token, the usual rule for English) decides whether
a prompt can fit a model's context and how much room is left for output; whether it
really fits is the provider's call unless even that count says it cannot.
"""

from __future__ import annotations

import json
from typing import Any

from gatewayz import errors
from gatewayz.record import record

PER_MESSAGE_TOKENS = 8  # role and separators a chat template adds around each message
PREAMBLE_TOKENS = 64  # a template's own system header (dates, tool instructions)
TOKEN_ID_MARGIN = 8  # token-id prompts: one token in this many again, for BOS/EOS and such
TYPICAL_BYTES_PER_TOKEN = 4
# One input image, when the model publishes no rule: no provider's rule exceeds it
# (OpenAI's GPT-4o mini counts a high-detail image as up to 48,169 tokens).
DEFAULT_IMAGE_TOKENS = 50_000
TYPICAL_IMAGE_TOKENS = 1_000  # a high-detail image on most models: for context room only
# Content parts the gateway can bound: text and refusals by their bytes, images by the
# model's per-image rule. Files, audio and video are refused (see the module docstring).
_TEXT_PARTS = frozenset({"text", "refusal"})
_IMAGE_PART = "image_url"
# Fields besides the messages that the provider puts in front of the model.
_CHAT_EXTRAS = ("tools", "functions", "tool_choice", "response_format")
# `json.dumps(value, ensure_ascii=False)`, its encoder made once, not on every call.
_JSON = json.JSONEncoder(ensure_ascii=False)


@record
class PromptSize:
    """A request's prompt: `bound` never undercounts; `typical` is a fair estimate."""

    bound: int  # tokens of every prompt's text, at most
    typical: int  # tokens of every prompt's text, typically
    longest_typical: int  # of the longest single prompt: what must fit the context
    images: int = 0
    prompts: int = 1  # a list `prompt` on /v1/completions is one generation per entry

    def bound_with(self, image_tokens: int | None) -> int:
        """The bound, images counted at `image_tokens` each (None: the default bound)."""
        return self.bound + self.images * (image_tokens or DEFAULT_IMAGE_TOKENS)

    def typical_with(self, image_tokens: int | None) -> int:
        """The typical size of every prompt, images included: an estimate of the bill."""
        return self.typical + self.images * _typical_image(image_tokens)

    def longest_with(self, image_tokens: int | None) -> int:
        """The typical size of the longest prompt, images included: what must fit."""
        return self.longest_typical + self.images * _typical_image(image_tokens)


def of_chat(body: dict[str, Any]) -> PromptSize:
    """The size of a chat request's prompt (messages validated already).

    Raises:
        InvalidRequest: a content part the gateway cannot bound (`param` names it).
    """
    messages = body["messages"]
    images = 0
    counted = []
    for i, message in enumerate(messages):
        if message.get("audio") is not None:  # an earlier audio answer, heard again
            raise _unbounded("audio", f"messages[{i}].audio")
        content = message.get("content")
        if isinstance(content, list):
            kept = []
            for j, part in enumerate(content):
                kind = part.get("type")
                if kind == _IMAGE_PART:
                    images += 1
                elif kind in _TEXT_PARTS:
                    kept.append(part)
                else:
                    raise _unbounded(kind, f"messages[{i}].content[{j}].type")
            message = {**message, "content": kept}
        counted.append(message)
    extras = [body[name] for name in _CHAT_EXTRAS if body.get(name)]
    size = _bytes(counted) + _bytes(extras)
    bound = size + PER_MESSAGE_TOKENS * len(messages) + PREAMBLE_TOKENS
    typical = _typical(size) + PER_MESSAGE_TOKENS * len(messages)
    return PromptSize(bound=bound, typical=typical, longest_typical=typical, images=images)


def of_completion(prompt: str | list[str] | list[int] | list[list[int]]) -> PromptSize:
    """The size of a legacy completion's `prompt` (validated already): one string, a list
    of strings, token ids, or a list of token-id lists (one generation per entry)."""
    if isinstance(prompt, str):
        entries: list[str | list[int]] = [prompt]
    elif prompt and all(isinstance(p, int) for p in prompt):
        entries = [prompt]  # type: ignore[list-item]
    else:
        entries = list(prompt)  # type: ignore[arg-type]
    bounds, typicals = [], []
    for entry in entries or [""]:
        if isinstance(entry, str):
            size = _bytes(entry)
            bounds.append(size + PREAMBLE_TOKENS)
            typicals.append(_typical(size))
        else:
            bounds.append(len(entry) + len(entry) // TOKEN_ID_MARGIN + PREAMBLE_TOKENS)
            typicals.append(len(entry))
    return PromptSize(
        bound=sum(bounds),
        typical=sum(typicals),
        longest_typical=max(typicals),
        prompts=len(bounds),
    )


def _typical_image(image_tokens: int | None) -> int:
    return min(image_tokens or DEFAULT_IMAGE_TOKENS, TYPICAL_IMAGE_TOKENS)


def text_bound(value: object) -> int:
    """At most how many tokens `value` (a string or JSON) makes: its UTF-8 bytes."""
    return _bytes(value)


def _unbounded(kind: object, param: str) -> errors.InvalidRequest:
    shown = f"`{errors.quote(kind)}`" if isinstance(kind, str) else "without a type"
    return errors.InvalidRequest(
        f"Content of type {shown} is not supported: the gateway cannot bound what it "
        "costs. Send text and `image_url` parts.",
        param=param,
    )


def _typical(size: int) -> int:
    return -(-size // TYPICAL_BYTES_PER_TOKEN)


def _bytes(value: object) -> int:
    if not value:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    return len(_JSON.encode(value).encode())
