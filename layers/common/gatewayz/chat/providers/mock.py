"""The offline provider `mock` (docs/architecture.md, local run): deterministic,
OpenAI-compatible, streaming.

The registry offers it only when no provider key is set, so a local run works without a
network. It answers in process with the same `Reply` a provider's HTTP answer gives, so
the gateway's SSE parsing, streaming and billing run against it unchanged.

The reply echoes the last `user` message (a string, or its `text` parts joined by a space;
empty if there is none). The legacy `/completions` echoes `prompt` (a string, or a list
joined by a space) as if it were the one user message. Tokens are whitespace-separated
words: prompt tokens = Σ over messages (words + 4), completion tokens = words in the reply.
A `max_completion_tokens` (or `max_tokens`) below the reply's word count keeps that many
words and finishes with "length". A stream sends one chunk per word.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gatewayz.chat.providers import mock_embeddings
from gatewayz.chat.providers.base import Provider
from gatewayz.chat.upstream import LocalReply
from gatewayz.errors import GatewayError, InvalidJSON, InvalidRequest, NotFound

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from gatewayz.chat.model import Model

_ROUTES = {"/chat/completions": "chat", "/completions": "text"}
_OBJECTS = {
    ("chat", False): "chat.completion",
    ("chat", True): "chat.completion.chunk",
    ("text", False): "text_completion",
    ("text", True): "text_completion",
}
_WORD = re.compile(r"\s*\S+")  # a word and the whitespace before it, so words re-join exactly


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return " ".join(p for p in parts if isinstance(p, str))


def _messages(kind: str, body: dict[str, Any]) -> list[tuple[object, str]]:
    """(role, text) of each message; a legacy prompt is one user message."""
    if kind == "text":
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)
        return [("user", prompt if isinstance(prompt, str) else "")]
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [(m.get("role"), _text(m.get("content"))) for m in messages if isinstance(m, dict)]


def _limit(body: dict[str, Any]) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _choice(finish: str | None, **part: Any) -> dict[str, Any]:
    return {"index": 0, **part, "logprobs": None, "finish_reason": finish}


def _part(kind: str, text: str, *, stream: bool) -> dict[str, Any]:
    """A choice's content: `text` (legacy), a chunk's `delta` or a `message`."""
    if kind == "text":
        return {"text": text}
    if stream:
        return {"delta": {"content": text} if text else {}}
    return {"message": {"role": "assistant", "content": text, "refusal": None}}


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def _events(
    kind: str, head: dict[str, Any], words: list[str], finish: str, usage: dict[str, int] | None
) -> AsyncIterator[bytes]:
    if usage is not None:  # as OpenAI: `usage: null` on every chunk but the last
        head = {**head, "usage": None}
    if kind == "chat":
        yield _sse({**head, "choices": [_choice(None, delta={"role": "assistant", "content": ""})]})
    for word in words:
        yield _sse({**head, "choices": [_choice(None, **_part(kind, word, stream=True))]})
    yield _sse({**head, "choices": [_choice(finish, **_part(kind, "", stream=True))]})
    if usage is not None:
        yield _sse({**head, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


def _reply(kind: str, body: dict[str, Any]) -> tuple[list[str], str, dict[str, int]]:
    """The reply's words (each with the whitespace before it), finish reason and usage."""
    messages = _messages(kind, body)
    last = next((text for role, text in reversed(messages) if role == "user"), "")
    words: list[str] = _WORD.findall(last.strip())
    limit, finish = _limit(body), "stop"
    if limit is not None and limit < len(words):
        words, finish = words[:limit], "length"
    prompt = sum(len(text.split()) + 4 for _, text in messages)
    usage = {"prompt_tokens": prompt, "completion_tokens": len(words)}
    return words, finish, {**usage, "total_tokens": prompt + len(words)}


def _error(error: GatewayError) -> LocalReply:
    return LocalReply(error.status, json.dumps(error.body()).encode())


async def _handle(path: str, payload: bytes) -> LocalReply:
    """Answer a POST to `path` (relative to the base URL) with `payload` as its body."""
    if path == "/embeddings":
        return mock_embeddings.answer(payload)
    kind = _ROUTES.get(path)
    if kind is None:
        return _error(NotFound(f"Unknown path: POST {path}"))
    try:
        body = json.loads(payload)
    except ValueError:  # also undecodable bytes: UnicodeDecodeError is a ValueError
        return _error(InvalidJSON("The request body is not valid JSON."))
    if not isinstance(body, dict):
        return _error(InvalidRequest("The request body must be a JSON object."))
    words, finish, usage = _reply(kind, body)
    stream = body.get("stream") is True
    head = {
        "id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-mock-{secrets.token_hex(12)}",
        "object": _OBJECTS[kind, stream],
        "created": int(time.time()),
        "model": str(body.get("model") or "mock/echo"),
    }
    if stream:
        options = body.get("stream_options")
        wanted = isinstance(options, dict) and options.get("include_usage") is True
        return LocalReply(200, _events(kind, head, words, finish, usage if wanted else None))
    choice = _choice(finish, **_part(kind, "".join(words), stream=False))
    return LocalReply(200, json.dumps({**head, "choices": [choice], "usage": usage}).encode())


class Mock(Provider):
    name = "mock"
    default_base_url = "http://mock.gatewayz.invalid/v1"

    def serve_locally(self) -> Callable[[str, bytes], Awaitable[LocalReply]]:
        return _handle

    def builtin_models(self) -> tuple[Model, ...]:
        # Priced like a real model ($1 / $2 per million tokens), so a demo shows billing.
        from gatewayz.billing.pricing import Offer, Price
        from gatewayz.chat.model import Model

        price = Price(input=Decimal("1"), output=Decimal("2"))
        offer = Offer("mock/echo", self.name, "mock/echo", priority=0, price=price)
        return (
            Model(
                id="mock/echo",
                name="Mock: Echo (offline)",
                description="Answers with the last user message. No network, no provider key.",
                context_length=32_768,
                max_output_tokens=4_096,
                supported_parameters=("max_tokens", "stream", "stream_options"),
                offers=(offer,),
            ),
            mock_embeddings.model(),
        )


PROVIDER = Mock()
