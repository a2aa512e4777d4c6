"""A completion request as the gateway reads it (DESIGN §3): the fields it validates and
an upper bound of its prompt's size in tokens.

The request itself passes to the provider whole; only `model`, `models`, `provider`,
`stream`, `stream_options`, `max_tokens`/`max_completion_tokens` and `n` are ours to read.
The prompt estimate is an upper bound so that the hold covers the real cost: a byte-level
tokenizer never makes more tokens than the text has UTF-8 bytes (plus a few per message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatewayz import errors

PER_MESSAGE_TOKENS = 8  # role and separators a chat template adds around each message
IMAGE_TOKENS = 2_000  # more than any provider bills for one image input
MAX_N = 16


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class _Common(_Lenient):
    model: str | None = Field(default=None, min_length=1)
    models: list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    n: int = Field(default=1, ge=1, le=MAX_N)


class ChatBody(_Common):
    messages: list[Message] = Field(min_length=1)


class CompletionBody(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """What the gateway needs to know about a request, besides the body it forwards."""

    body: dict[str, Any]
    chat: bool
    models: tuple[str, ...]  # `model` first, then the `models` fallbacks
    stream: bool
    include_usage: bool
    max_output_tokens: int | None  # as the client asked; None: the model's default
    n: int
    prompt_tokens: int  # upper bound

    @property
    def model(self) -> str:
        return self.models[0]


def parse(body: object, *, chat: bool) -> CompletionRequest:
    """Validate the fields the gateway reads.

    Raises:
        InvalidRequest: naming the first bad parameter.
    """
    from gatewayz.http import validation_to_error

    if not isinstance(body, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    try:
        parsed = (ChatBody if chat else CompletionBody).model_validate(body)
    except ValidationError as exc:
        raise validation_to_error(exc.errors()) from None
    models = tuple(dict.fromkeys([m for m in [parsed.model, *(parsed.models or [])] if m]))
    if not models:
        raise errors.InvalidRequest("`model` is required.", param="model")
    return CompletionRequest(
        body=body,
        chat=chat,
        models=models,
        stream=parsed.stream,
        include_usage=bool(parsed.stream_options and parsed.stream_options.include_usage),
        max_output_tokens=parsed.max_completion_tokens or parsed.max_tokens,
        n=parsed.n,
        prompt_tokens=estimate_prompt(body, chat=chat),
    )


def estimate_prompt(body: dict[str, Any], *, chat: bool) -> int:
    """An upper bound of the prompt's tokens: its UTF-8 bytes as JSON (keys and quotes
    included), images counted at `IMAGE_TOKENS` each instead of their encoded size."""
    if not chat:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and all(isinstance(p, int) for p in prompt):
            return len(prompt)
        if isinstance(prompt, list) and all(isinstance(p, list) for p in prompt):
            return sum(len(p) for p in prompt)
        return _bytes(prompt)
    messages = body.get("messages") or []
    images = 0
    stripped = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            kept = [
                p for p in content if not (isinstance(p, dict) and p.get("type") == "image_url")
            ]
            images += len(content) - len(kept)
            message = {**message, "content": kept}
        stripped.append(message)
    extras = [
        body.get(name) for name in ("tools", "functions", "response_format") if body.get(name)
    ]
    return (
        _bytes(stripped)
        + _bytes(extras)
        + PER_MESSAGE_TOKENS * len(messages)
        + IMAGE_TOKENS * images
    )


def _bytes(value: object) -> int:
    if not value:
        return 0
    return len(json.dumps(value, ensure_ascii=False).encode())
