"""A fake OpenAI-compatible upstream provider: a real HTTP server on 127.0.0.1.

Speaks what OpenRouter, Chutes or Featherless speak: `POST /v1/chat/completions` and the
legacy `POST /v1/completions` (JSON, or SSE with `stream: true`), `POST /v1/embeddings`
(floats, see `embedding`, or base64 as `encoding_format` asks) and `GET /v1/models`
(`model_list`, entries in OpenRouter's shape from `openrouter_model`; `models_status`
other than 200 answers an error instead).
Each completion request takes the next queued `Behaviour` (the `default` one when the
queue is empty), which scripts failures, delays, tool calls, usage and broken streams.
Every request is recorded in `requests`.

    with serve() as fake:
        fake.enqueue(Behaviour(status=500), Behaviour(content="hi", cut_after=1))
        client = openai.OpenAI(base_url=fake.base_url, api_key="k")

Like the mock provider, the answer echoes the last user message, counts words as tokens
(prompt = Σ over messages (words + 4), completion = words of the content and of each tool
call's arguments), and honours `max_tokens`/`max_completion_tokens` with "length". Unless
a behaviour scripts the content or the tool calls, a chat request with function `tools`
gets a tool call and one with `response_format` JSON, as a real model answers them
(tests/fakes/openai_answers.py). A stream sends a role chunk, one chunk per word (then per
tool-call fragment, index-based as OpenAI does; an answer of tool calls only opens with the
role and the first call's name in one chunk, as OpenAI's does), a finish chunk, a usage
chunk with `choices: []` when `stream_options.include_usage` asks for it, then
`data: [DONE]`.

`ignore_max_tokens` answers with every word whatever the cap says (a provider that ignores
it); `usage_in_answer=False` leaves `usage` out of a non-streamed answer; `reasoning` is
sent as `delta.reasoning` pieces (a word each) before the content, and counted as
completion tokens.

`cut_after=n` drops the connection after n content chunks (after all of them if there are
fewer; before the finish chunk, usage and `[DONE]`): the app raises once the response has
started, so uvicorn closes the socket mid chunked body and httpx raises
`httpx.RemoteProtocolError` ("incomplete chunked read") while the client iterates (the
`openai` SDK wraps it in `openai.APIConnectionError`). `usage_every_chunk` puts a running
usage on every chunk: completion tokens = content chunks sent so far. `mid_stream_error`
sends one `data: {"error": ...}` after the content, then ends the body cleanly (no finish
chunk, no usage, no `[DONE]`).

`model` names another model id in the answer than the request's (a provider's snapshot
id), and `finish_reason` may be any provider's word (`end_turn`, `MAX_TOKENS`, `eos`).
`first_chunk` sends a stream's headers, then nothing until the event is set.

`drop_connection` closes the socket before any response headers, as a provider whose
process died or whose load balancer reset the connection: the client sees the connection
end without a status line. `received` and `release` let a test hold a request at the
provider: the fake sets `received` when the request arrives, then answers only once
`release` is set (or after RELEASE_TIMEOUT_S, so a test that forgets cannot hang the run).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes import openai_answers
from tests.fakes.asgi_server import serve_asgi

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

# Upstream detail the gateway must never pass on to its clients.
SECRET = "upstream-internal-detail-XYZ"
DEFAULT_ERROR: dict[str, Any] = {
    "error": {
        "message": f"Internal failure at db-7.internal:5432 ({SECRET})",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
}
MODELS = ("fake/echo", "fake/tools")
RELEASE_TIMEOUT_S = 30.0
_WORD = re.compile(r"\s*\S+")  # a word and the whitespace before it, so words re-join exactly
_FRAGMENT = 8  # characters of tool-call arguments per streamed chunk


@dataclass
class Behaviour:
    """How the fake answers one completion request."""

    status: int = 200
    error_body: dict[str, Any] | str | None = None  # for status >= 400; None: DEFAULT_ERROR
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    delay_s: float = 0.0  # before the response headers
    content: str | None = None  # None: echo the last user message (None with tool_calls)
    usage: dict[str, Any] | None = None  # None: counted as the docstring says
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI tool call objects
    raw_body: str | None = None  # sent as is (status `status`) instead of any answer
    # Streams (`cut_after` also cuts a non-streamed answer or an error halfway through):
    chunk_delay_s: float = 0.0  # between chunks
    one_write: bool = False  # the whole stream in one body message (one read at the gateway)
    cut_after: int | None = None  # drop the connection after this many content chunks
    usage_every_chunk: bool = False  # a running `usage` on every chunk
    usage_in_stream: bool = True  # False: ignore stream_options.include_usage
    mid_stream_error: dict[str, Any] | None = None  # `data: {"error": ...}` after the content
    # A provider that generates its own length whatever `max_tokens` says.
    ignore_max_tokens: bool = False
    usage_in_answer: bool = True  # False: a non-streamed answer without `usage`
    reasoning: str | None = None  # streamed as `delta.reasoning` pieces before the content
    drop_connection: bool = False  # close the socket before sending any response headers
    received: threading.Event | None = None  # set as soon as the request arrives
    # As providers differ from OpenAI: the model id the answer names (None: the request's),
    # and `finish_reason` above may be a provider's own (`end_turn`, `MAX_TOKENS`, `eos`).
    model: str | None = None
    # A stream's headers go out, then nothing until this is set (or RELEASE_TIMEOUT_S).
    first_chunk: threading.Event | None = None
    release: threading.Event | None = None  # wait for it before answering at all


@dataclass(frozen=True)
class Received:
    """One request as the fake received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    json: Any  # the parsed body; None when empty or not JSON


class _Cut(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-response."""


class _QuietCut(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Cut))


_QUIET_CUT = _QuietCut()


class FakeUpstream:
    """The running fake: its URL, the requests it received, and its scripted answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.requests: list[Received] = []
        self.default = Behaviour()
        # `GET /v1/models`: these entries (see `openrouter_model`), or this status's error.
        self.model_list: list[Any] = _default_models()
        self.models_status = 200
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Answer the next completion requests this way, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        """Forget the requests and the queue; the default behaviour becomes `Behaviour()`."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = Behaviour()
            self.model_list = _default_models()
            self.models_status = 200

    @property
    def last(self) -> Received:
        """The most recent request."""
        return self.requests[-1]

    def _next(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        self.requests.append(Received(method, path, query, headers, body))
        if method == "GET" and path == "/v1/models":
            if self.models_status != 200:
                return await _json(send, self.models_status, DEFAULT_ERROR)
            return await _json(send, 200, {"object": "list", "data": self.model_list})
        if method == "POST" and path == "/v1/embeddings" and isinstance(body, dict):
            return await _embeddings(send, self._next(), body)
        if path.startswith("/v1/images/"):
            return await _images(send, self, Received(method, path, query, headers, body))
        kind = {"/v1/chat/completions": "chat", "/v1/completions": "text"}.get(path)
        if method != "POST" or kind is None:
            return await _json(send, 404, _error(f"Unknown path: {method} {path}", "not_found"))
        if not isinstance(body, dict):
            return await _json(send, 400, _error("Invalid JSON body.", "invalid_json"))
        await _answer(send, self._next(), kind, body)


def _default_models() -> list[Any]:
    return [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODELS]


def openrouter_model(
    model_id: str,
    *,
    prompt: str | None = None,
    completion: str | None = None,
    context_length: int = 32_768,
    max_completion_tokens: int | None = 4096,
    input_modalities: tuple[str, ...] = ("text",),
    output_modalities: tuple[str, ...] = ("text",),
    supported_parameters: tuple[str, ...] = ("max_tokens", "temperature"),
    **pricing: str,
) -> dict[str, Any]:
    """One entry of OpenRouter's `GET /api/v1/models`: prices are USD per token, as strings
    (`prompt`, `completion`, and any other `pricing` field by keyword); no prices at all
    when neither is given (as Chutes or Featherless list their models)."""
    entry: dict[str, Any] = {
        "id": model_id,
        "canonical_slug": model_id,
        "name": f"Fake: {model_id}",
        "created": 1_700_000_000,
        "description": f"{model_id}, served by the fake upstream.",
        "context_length": context_length,
        "architecture": {
            "modality": f"{'+'.join(input_modalities)}->{'+'.join(output_modalities)}",
            "input_modalities": list(input_modalities),
            "output_modalities": list(output_modalities),
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "top_provider": {
            "context_length": context_length,
            "max_completion_tokens": max_completion_tokens,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": list(supported_parameters),
    }
    if prompt is not None or completion is not None:
        entry["pricing"] = {"prompt": prompt, "completion": completion, "request": "0", **pricing}
    return entry


def _error(message: str, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


async def _start(send: Send, status: int, content_type: str, extra: dict[str, str]) -> None:
    headers = [(b"content-type", content_type.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _json(
    send: Send, status: int, payload: object, extra: dict[str, str] | None = None
) -> None:
    await _start(send, status, "application/json", extra or {})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


def _text(content: object) -> str:
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return " ".join(p for p in parts if isinstance(p, str))
    return content if isinstance(content, str) else ""


@dataclass
class _Answer:
    """What one request is answered with, streamed or not."""

    words: list[str]
    tool_calls: list[dict[str, Any]]
    finish: str
    usage: dict[str, Any]
    reasoning: list[str] = field(default_factory=list)


def _plan(b: Behaviour, kind: str, body: dict[str, Any]) -> _Answer:
    if kind == "text":
        prompt = body.get("prompt")
        prompt = " ".join(map(str, prompt)) if isinstance(prompt, list) else prompt
        messages: list[tuple[object, str]] = [("user", prompt if isinstance(prompt, str) else "")]
    else:
        raw = body.get("messages")
        raw = raw if isinstance(raw, list) else []
        messages = [(m.get("role"), _text(m.get("content"))) for m in raw if isinstance(m, dict)]
    calls = [] if kind == "text" else _tool_calls(b.tool_calls or [])
    content = b.content
    if content is None and not calls:
        content = next((text for role, text in reversed(messages) if role == "user"), "")
        asked = openai_answers.tool_call(body) if kind == "chat" and b.tool_calls is None else None
        if asked is not None:
            calls, content = [asked], None
        elif kind == "chat":
            content = openai_answers.content(body, content.strip())
    words: list[str] = _WORD.findall((content or "").strip())
    finish = "tool_calls" if calls else b.finish_reason
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and 0 <= limit < len(words) and not b.ignore_max_tokens:
        words, finish = words[:limit], "length"
    usage = dict(b.usage) if b.usage is not None else None
    if usage is None:
        completion = len(words) + len((b.reasoning or "").split())
        completion += sum(len(c["function"]["arguments"].split()) for c in calls)
        usage = {
            "prompt_tokens": sum(len(t.split()) + 4 for _, t in messages),
            "completion_tokens": completion,
        }
    if isinstance(usage.get("prompt_tokens"), int) and isinstance(
        usage.get("completion_tokens"), int
    ):
        usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    return _Answer(words, calls, finish, usage, _WORD.findall((b.reasoning or "").strip()))


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(calls):
        function = call.get("function", {})
        out.append(
            {
                "id": call.get("id") or f"call_fake_{i}",
                "type": call.get("type", "function"),
                "function": {
                    "name": function.get("name", ""),
                    "arguments": function.get("arguments", ""),
                },
            }
        )
    return out


async def _answer(send: Send, b: Behaviour, kind: str, body: dict[str, Any]) -> None:
    if b.received is not None:
        b.received.set()
    if b.release is not None:
        # In a worker thread, so the fake goes on serving other requests meanwhile.
        await asyncio.to_thread(b.release.wait, RELEASE_TIMEOUT_S)
    if b.drop_connection:
        return await _drop(send)
    if b.delay_s:
        await asyncio.sleep(b.delay_s)
    if b.raw_body is not None:
        await _start(send, b.status, "application/json", b.headers)
        await send({"type": "http.response.body", "body": b.raw_body.encode()})
        return
    if b.status >= 400:
        error = DEFAULT_ERROR if b.error_body is None else b.error_body
        plain = isinstance(error, str)
        data = (error if isinstance(error, str) else json.dumps(error)).encode()
        await _start(send, b.status, "text/plain" if plain else "application/json", b.headers)
        if b.cut_after is not None:  # half the error body, then a dropped socket
            await send(
                {"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True}
            )
            raise _Cut
        await send({"type": "http.response.body", "body": data})
        return
    answer = _plan(b, kind, body)
    prefix = "chatcmpl" if kind == "chat" else "cmpl"
    head = {
        "id": f"{prefix}-fake-{secrets.token_hex(8)}",
        "object": "",
        "created": int(time.time()),
        "model": b.model or body.get("model"),
        "system_fingerprint": "fp_fake",
    }
    if body.get("stream") is True:
        return await _stream(send, b, kind, head, answer, body.get("stream_options"))
    if kind == "text":
        choice: dict[str, Any] = {"text": "".join(answer.words)}
    else:
        text = "".join(answer.words) if b.content is not None or not answer.tool_calls else None
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if b.reasoning is not None:
            message["reasoning"] = b.reasoning
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        choice = {"message": {**message, "refusal": None}}
    head["object"] = "chat.completion" if kind == "chat" else "text_completion"
    choices = [{"index": 0, **choice, "logprobs": None, "finish_reason": answer.finish}]
    payload = {**head, "choices": choices}
    if b.usage_in_answer:
        payload["usage"] = answer.usage
    if b.cut_after is None:
        return await _json(send, 200, payload, b.headers)
    data = json.dumps(payload).encode()  # cut: the first half of the JSON, then a dropped socket
    await _start(send, 200, "application/json", b.headers)
    await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
    raise _Cut


async def _drop(send: Send) -> None:
    """Abort the connection before any response. ASGI has no message for this; uvicorn's
    h11 cycle (which `serve_asgi` runs) holds the socket's transport."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("drop_connection needs uvicorn's h11 server (serve_asgi)")
    transport.abort()
    # One turn of the loop: uvicorn learns the connection is gone, so it sends no 500.
    await asyncio.sleep(0)


def _pieces(kind: str, answer: _Answer) -> list[dict[str, Any]]:
    """The content chunks' choice bodies: words, then tool-call fragments."""
    if kind == "text":
        return [{"text": w} for w in answer.words]
    pieces: list[dict[str, Any]] = [{"delta": {"reasoning": w}} for w in answer.reasoning]
    pieces += [{"delta": {"content": w}} for w in answer.words]
    for i, call in enumerate(answer.tool_calls):
        first = {
            **call,
            "index": i,
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        pieces.append({"delta": {"tool_calls": [first]}})
        args = call["function"]["arguments"]
        for j in range(0, len(args), _FRAGMENT):
            fragment = {"index": i, "function": {"arguments": args[j : j + _FRAGMENT]}}
            pieces.append({"delta": {"tool_calls": [fragment]}})
    return pieces


async def _stream(
    send: Send, b: Behaviour, kind: str, head: dict[str, Any], answer: _Answer, options: object
) -> None:
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    head["object"] = "chat.completion.chunk" if kind == "chat" else "text_completion"
    if wants_usage:
        head["usage"] = None  # as OpenAI: null on every chunk but the last
    sent = 0
    held: list[bytes] = []  # `one_write`: what goes out with the last event

    async def emit(payload: object, *, last: bool = False) -> None:
        nonlocal sent
        if sent and b.chunk_delay_s:
            await asyncio.sleep(b.chunk_delay_s)
        data = (
            b"data: [DONE]\n\n" if payload is None else f"data: {json.dumps(payload)}\n\n".encode()
        )
        if b.one_write and not last:
            held.append(data)
        else:
            body = b"".join([*held, data])
            await send({"type": "http.response.body", "body": body, "more_body": not last})
        sent += 1

    def chunk(piece: dict[str, Any], finish: str | None, done: int) -> dict[str, Any]:
        out = {
            **head,
            "choices": [{"index": 0, **piece, "logprobs": None, "finish_reason": finish}],
        }
        if b.usage_every_chunk:
            prompt = answer.usage.get("prompt_tokens", 0)
            out["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": done,
                "total_tokens": prompt + done,
            }
        return out

    await _start(send, 200, "text/event-stream", b.headers)
    if b.first_chunk is not None:
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await asyncio.to_thread(b.first_chunk.wait, RELEASE_TIMEOUT_S)
    pieces = _pieces(kind, answer)
    if kind == "chat" and answer.tool_calls and not answer.words and not answer.reasoning:
        # As OpenAI opens a tool-call stream: the role and the first call in one chunk.
        opening = {"role": "assistant", "content": None, "refusal": None}
        pieces[0] = {"delta": {**opening, **pieces[0]["delta"]}}
    elif kind == "chat":
        opening = {"role": "assistant", "content": "", "refusal": None}
        await emit(chunk({"delta": opening}, None, 0))
    for done, piece in enumerate(pieces):
        if b.cut_after is not None and done >= b.cut_after:
            raise _Cut
        await emit(chunk(piece, None, done + 1))
    if b.cut_after is not None:
        raise _Cut
    if b.mid_stream_error is not None:
        return await emit({"error": b.mid_stream_error}, last=True)
    await emit(chunk({"delta": {}} if kind == "chat" else {"text": ""}, answer.finish, len(pieces)))
    if wants_usage and b.usage_in_stream:
        await emit({**head, "choices": [], "usage": answer.usage})
    await emit(None, last=True)


def embedding(data: str | list[int], index: int, dimensions: int | None = None) -> list[float]:
    """The fake's vector for one input: `dimensions` (default 4) numbers that float32
    holds exactly (so a base64 round trip must give them back unchanged)."""
    size = len(data.split()) if isinstance(data, str) else len(data)
    head = [(index + 1) / 4, -size / 8, 0.5]
    count = dimensions or 4
    return [head[i] if i < len(head) else i / 16 for i in range(count)]


async def _embeddings(send: Send, b: Behaviour, body: dict[str, Any]) -> None:
    """`POST /v1/embeddings`, as OpenAI answers it with floats: one vector per input
    (see `embedding`); prompt tokens = words of each text input, ids of a token input.
    A behaviour's `status`, `error_body`, `raw_body`, `usage` and `usage_in_answer`
    apply as for completions."""
    if b.raw_body is not None or b.status >= 400:
        error = DEFAULT_ERROR if b.error_body is None else b.error_body
        data = b.raw_body if b.raw_body is not None else json.dumps(error)
        await _start(send, b.status, "application/json", b.headers)
        await send({"type": "http.response.body", "body": data.encode()})
        return
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        raw = [raw]
    inputs = raw if isinstance(raw, list) else []
    dimensions = body.get("dimensions")
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": openai_answers.encoded(embedding(item, i, dimensions), body),
        }
        for i, item in enumerate(inputs)
    ]
    tokens = sum(len(i.split()) if isinstance(i, str) else len(i) for i in inputs)
    payload: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model")}
    if b.usage_in_answer:
        payload["usage"] = b.usage or {"prompt_tokens": tokens, "total_tokens": tokens}
    await _json(send, 200, payload, b.headers)


def fake_image(prompt: str, index: int, size: str) -> bytes:
    """The fake's PNG for image `index` of `prompt` at `size` (`WIDTHxHEIGHT`)."""
    from gatewayz.chat.offline import png

    width, _, height = size.partition("x")
    return png.picture(json.dumps(["fake", prompt, index]).encode(), int(width), int(height))


async def _images(send: Send, fake: FakeUpstream, got: Received) -> None:
    """`POST /v1/images/generations` as OpenAI answers it: `gpt-image` models with
    `b64_json`, others (DALL-E) with a `url` on this fake (`GET /v1/images/files?...`,
    which serves `fake_image`) and a `revised_prompt`. A behaviour's `status`,
    `error_body`, `raw_body`, `headers` and `delay_s` apply as for completions."""
    from urllib.parse import parse_qs, urlencode

    if got.method == "GET" and got.path == "/v1/images/files":
        query = {k: v[0] for k, v in parse_qs(got.query).items()}
        data = fake_image(query["prompt"], int(query["index"]), query["size"])
        await _start(send, 200, "image/png", {})
        await send({"type": "http.response.body", "body": data})
        return
    body = got.json
    if got.method != "POST" or got.path != "/v1/images/generations" or not isinstance(body, dict):
        return await _json(send, 404, _error(f"Unknown path: {got.method} {got.path}", "not_found"))
    b = fake._next()
    if b.delay_s:
        await asyncio.sleep(b.delay_s)
    if b.raw_body is not None or b.status >= 400:
        error = DEFAULT_ERROR if b.error_body is None else b.error_body
        data = b.raw_body if b.raw_body is not None else json.dumps(error)
        await _start(send, b.status, "application/json", b.headers)
        await send({"type": "http.response.body", "body": data.encode()})
        return
    prompt, size = str(body.get("prompt")), str(body.get("size") or "1024x1024")
    items: list[dict[str, Any]] = []
    for index in range(int(body.get("n") or 1)):
        if "gpt-image" in str(body.get("model")):
            encoded = base64.b64encode(fake_image(prompt, index, size)).decode()
            items.append({"b64_json": encoded})
        else:
            query = urlencode({"prompt": prompt, "index": index, "size": size})
            url = f"{fake.base_url}/images/files?{query}"
            items.append({"url": url, "revised_prompt": f"{prompt}, revised"})
    await _json(send, 200, {"created": int(time.time()), "data": items}, b.headers)


@contextmanager
def serve() -> Iterator[FakeUpstream]:
    """Run the fake on 127.0.0.1 (a free port) in a thread; yield it."""
    logging.getLogger("uvicorn.error").addFilter(_QUIET_CUT)  # a cut is on purpose, not an error
    fake = FakeUpstream(0)
    with serve_asgi(fake) as port:
        fake.port, fake.base_url = port, f"http://127.0.0.1:{port}/v1"
        yield fake
