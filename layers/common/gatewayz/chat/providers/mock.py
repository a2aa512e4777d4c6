"""The offline provider `mock` (docs/architecture.md, local run; docs/api.md, "The offline
mock"): deterministic, OpenAI-compatible, streaming.

The registry offers it when no provider key is set, so a local run works without a
network, and beside the real providers when `GATEWAYZ_MOCK=on`. It answers in process with
the same `Reply` a provider's HTTP answer gives, so the gateway's SSE parsing, streaming
and billing run against it unchanged. What it says (echoes, tool calls, structured output,
n, stop, logprobs, usage) is gatewayz/chat/offline/replies.py; this file puts it in
OpenAI's wire shapes, answered whole or streamed one token a chunk (the tool call's name,
then its argument fragments, as OpenAI streams them; choices interleaved).
"""

from __future__ import annotations

import json
import secrets
import time
from decimal import Decimal
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from gatewayz.chat.offline import logprobs, replies
from gatewayz.chat.providers import mock_embeddings, mock_images
from gatewayz.chat.providers.base import Provider
from gatewayz.chat.upstream import LocalReply
from gatewayz.errors import GatewayError, InvalidJSON, InvalidRequest, NotFound

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from gatewayz.chat.model import Model
    from gatewayz.chat.offline.replies import Output

_ROUTES = {"/chat/completions": "chat", "/completions": "text"}
_OBJECTS = {
    ("chat", False): "chat.completion",
    ("chat", True): "chat.completion.chunk",
    ("text", False): "text_completion",
    ("text", True): "text_completion",
}
# What the mock honours; `GET /v1/models` lists it, `provider.require_parameters` checks it.
SUPPORTED_PARAMETERS = (
    "max_tokens", "n", "stop", "seed", "logprobs", "top_logprobs", "tools", "tool_choice",
    "parallel_tool_calls", "response_format", "structured_outputs",
)  # fmt: skip


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _logprobs(kind: str, out: Output, top: int | None) -> object:
    if top is None:
        return None
    if kind == "text":
        return logprobs.legacy(list(out.pieces), top)
    if out.tool is not None:
        return {"content": None, "refusal": None}
    return logprobs.chat(list(out.pieces), top)


def _message(out: Output) -> dict[str, Any]:
    if out.tool is None:
        return {"role": "assistant", "content": out.text, "refusal": None}
    function = {"name": out.tool.name, "arguments": out.text}
    call = {"id": out.tool.id, "type": "function", "function": function}
    return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}


def _choice(kind: str, out: Output, top: int | None) -> dict[str, Any]:
    part = {"text": out.text} if kind == "text" else {"message": _message(out)}
    lp = _logprobs(kind, out, top)
    return {"index": out.index, **part, "logprobs": lp, "finish_reason": out.finish}


def _chunks(kind: str, out: Output, top: int | None) -> list[dict[str, Any]]:
    """One choice's stream: each chunk's choice, in order."""

    def chunk(finish: str | None = None, lp: object = None, **part: Any) -> dict[str, Any]:
        return {"index": out.index, **part, "logprobs": lp, "finish_reason": finish}

    if kind == "text":
        offsets = accumulate((len(p) for p in out.pieces), initial=0)
        pieces = [
            chunk(text=p, lp=None if top is None else logprobs.legacy([p], top, at))
            for p, at in zip(out.pieces, offsets, strict=False)  # one offset more: the end
        ]
        return [*pieces, chunk(out.finish, text="")]
    if out.tool is None:
        head = chunk(delta={"role": "assistant", "content": ""})
        pieces = [
            chunk(delta={"content": p}, lp=None if top is None else logprobs.chat([p], top))
            for p in out.pieces
        ]
    else:
        function = {"name": out.tool.name, "arguments": ""}
        call = {"index": 0, "id": out.tool.id, "type": "function", "function": function}
        head = chunk(delta={"role": "assistant", "content": None, "tool_calls": [call]})
        pieces = [
            chunk(delta={"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
            for p in out.pieces
        ]
    return [head, *pieces, chunk(out.finish, delta={})]


async def _events(
    kind: str, head: dict[str, Any], reply: replies.Reply, usage: bool
) -> AsyncIterator[bytes]:
    if usage:  # as OpenAI: `usage: null` on every chunk but the last
        head = {**head, "usage": None}
    streams = [_chunks(kind, out, reply.top_logprobs) for out in reply.outputs]
    for step in range(max(len(s) for s in streams)):
        for stream in streams:
            if step < len(stream):
                yield _sse({**head, "choices": [stream[step]]})
    if usage:
        yield _sse({**head, "choices": [], "usage": reply.usage})
    yield b"data: [DONE]\n\n"


def _error(error: GatewayError) -> LocalReply:
    return LocalReply(error.status, json.dumps(error.body()).encode())


async def _handle(path: str, payload: bytes) -> LocalReply:
    """Answer a POST to `path` (relative to the base URL) with `payload` as its body."""
    if path == "/embeddings":
        return mock_embeddings.answer(payload)
    if path == "/images/generations":
        return mock_images.answer(payload)
    kind = _ROUTES.get(path)
    if kind is None:
        return _error(NotFound(f"Unknown path: POST {path}"))
    try:
        body = json.loads(payload)
    except ValueError:  # also undecodable bytes: UnicodeDecodeError is a ValueError
        return _error(InvalidJSON("The request body is not valid JSON."))
    if not isinstance(body, dict):
        return _error(InvalidRequest("The request body must be a JSON object."))
    try:
        reply = replies.reply(kind, body)
    except replies.Refused as exc:
        return _error(InvalidRequest(exc.message, param=exc.param))
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
        return LocalReply(200, _events(kind, head, reply, wanted))
    choices = [_choice(kind, out, reply.top_logprobs) for out in reply.outputs]
    return LocalReply(200, json.dumps({**head, "choices": choices, "usage": reply.usage}).encode())


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
                description=(
                    "Answers with the last user message, or calls a tool, or answers JSON of "
                    "the asked schema. No network, no provider key."
                ),
                context_length=32_768,
                max_output_tokens=4_096,
                supported_parameters=SUPPORTED_PARAMETERS,
                offers=(offer,),
            ),
            mock_embeddings.model(),
            mock_images.model(),
        )


PROVIDER = Mock()
