"""The offline `mock` provider, driven through a real httpx client and the
official `openai` SDK: a small httpx transport hands their requests to the mock's
in-process handler, as `gatewayz.chat.upstream.post` does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz.chat.providers import mock
from gatewayz.chat.providers.mock import PROVIDER
from tests.unit.providers.mock_client import Bridge as _Bridge
from tests.unit.providers.mock_client import client as _client
from tests.unit.providers.mock_client import http as _http

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

MESSAGE = "The quick brown fox jumps"
WORDS = MESSAGE.split()


def _prompt_tokens(*texts: str) -> int:
    return sum(len(t.split()) + 4 for t in texts)


def _user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_is_a_provider_without_network() -> None:
    assert mock.PROVIDER.name == "mock"
    assert httpx.URL(PROVIDER.default_base_url).host.endswith(".invalid")
    assert PROVIDER.serve_locally() is not None


async def test_chat_over_http_echoes_the_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        _user("first question"),
        {"role": "assistant", "content": "first answer"},
        _user(MESSAGE),
    ]
    async with _http() as http:
        response = await http.post(
            "/chat/completions", json={"model": "mock/echo", "messages": messages}
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-mock-")
    assert body["model"] == "mock/echo"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": MESSAGE,
        "refusal": None,
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    prompt = _prompt_tokens(*(m["content"] for m in messages))
    assert body["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": len(WORDS),
        "total_tokens": prompt + len(WORDS),
    }


async def test_sdk_non_streamed() -> None:
    completion = await _client().chat.completions.create(
        model="mock/other", messages=[_user("hello there\nsecond line")]
    )
    assert completion.model == "mock/other"
    assert completion.choices[0].message.content == "hello there\nsecond line"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4
    assert completion.usage.prompt_tokens == _prompt_tokens("hello there\nsecond line")


async def test_sdk_stream_with_usage_ends_with_an_empty_choices_chunk() -> None:
    stream = await _client().chat.completions.create(
        model="mock/echo",
        messages=[_user(MESSAGE)],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    content = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert content == [WORDS[0], *(" " + w for w in WORDS[1:])]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(WORDS)
    assert chunks[-1].usage.prompt_tokens == _prompt_tokens(MESSAGE)
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id}
    assert {(c.object, c.model, c.created) for c in chunks} == {
        ("chat.completion.chunk", "mock/echo", chunks[0].created)
    }


async def test_sdk_stream_without_usage_sends_no_usage_chunk() -> None:
    stream = await _client().chat.completions.create(
        model="mock/echo", messages=[_user(MESSAGE)], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None and c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == MESSAGE
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_truncates_with_finish_reason_length(field: str) -> None:
    client = _client()
    limit = 2
    completion = await client.chat.completions.create(
        model="mock/echo", messages=[_user(MESSAGE)], **{field: limit}
    )
    assert completion.choices[0].message.content == " ".join(WORDS[:limit])
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == limit
    stream = await client.chat.completions.create(
        model="mock/echo",
        messages=[_user(MESSAGE)],
        stream=True,
        stream_options={"include_usage": True},
        **{field: limit},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == " ".join(
        WORDS[:limit]
    )
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == limit


async def test_max_tokens_at_least_the_reply_stops_normally() -> None:
    completion = await _client().chat.completions.create(
        model="mock/echo", messages=[_user(MESSAGE)], max_tokens=len(WORDS)
    )
    assert completion.choices[0].message.content == MESSAGE
    assert completion.choices[0].finish_reason == "stop"


async def test_content_parts_join_their_text() -> None:
    parts = [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this picture"},
    ]
    completion = await _client().chat.completions.create(model="mock/echo", messages=[_user(parts)])
    assert completion.choices[0].message.content == "describe this picture"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == _prompt_tokens("describe this picture")
    assert completion.usage.completion_tokens == 3


async def test_no_user_message_answers_empty() -> None:
    completion = await _client().chat.completions.create(
        model="mock/echo", messages=[{"role": "system", "content": "only a system prompt"}]
    )
    assert completion.choices[0].message.content == ""
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 0
    assert completion.usage.prompt_tokens == _prompt_tokens("only a system prompt")


@pytest.mark.parametrize(
    ("prompt", "echo"), [(MESSAGE, MESSAGE), (["one two", "three"], "one two three")]
)
async def test_legacy_completions_echo_the_prompt(prompt: str | list[str], echo: str) -> None:
    client = _client()
    completion = await client.completions.create(model="mock/echo", prompt=prompt)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == echo
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == _prompt_tokens(echo)
    assert completion.usage.completion_tokens == len(echo.split())
    stream = await client.completions.create(
        model="mock/echo", prompt=prompt, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == echo
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(echo.split())


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""])
async def test_invalid_json_is_400_with_an_openai_envelope(body: bytes) -> None:
    async with _http() as http:
        response = await http.post(
            "/chat/completions", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_json"
    assert error["message"]


async def test_a_body_that_is_not_an_object_is_400() -> None:
    async with _http() as http:
        response = await http.post("/chat/completions", json=[{"role": "user"}])
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", ["/moderations", "/models", "/chat/completion"])
async def test_unknown_paths_are_404(path: str) -> None:
    async with _http() as http:
        response = await http.post(path, json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_sdk_raises_not_found_for_an_unknown_route() -> None:
    with pytest.raises(openai.NotFoundError):
        await _client().moderations.create(model="mock/echo", input="x")


async def test_stream_yields_one_event_per_chunk_of_real_bytes() -> None:
    async with _http() as http:
        body = {"model": "mock/echo", "messages": [_user(MESSAGE)], "stream": True}
        async with http.stream("POST", "/chat/completions", json=body) as response:
            assert response.headers["content-type"] == "text/event-stream"
            raw = [piece async for piece in response.aiter_raw()]
    assert len(raw) == 1 + len(WORDS) + 1 + 1  # role, words, finish, [DONE]
    assert all(
        isinstance(p, bytes) and p.startswith(b"data: ") and p.endswith(b"\n\n") for p in raw
    )
    assert raw[-1] == b"data: [DONE]\n\n"
    events = [json.loads(p.removeprefix(b"data: ")) for p in raw[:-1]]
    assert [e["choices"][0]["delta"].get("content") for e in events[1:-1]] == [
        WORDS[0],
        *(" " + w for w in WORDS[1:]),
    ]


class _Rechunk(httpx.AsyncBaseTransport):
    """Re-cuts the mock's response bytes into pieces of `size` bytes, as a network may."""

    def __init__(self, size: int) -> None:
        self.inner = _Bridge()
        self.size = size

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        data = await response.aread()

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(data), self.size):
                yield data[start : start + self.size]

        headers = {"content-type": response.headers["content-type"]}
        return httpx.Response(response.status_code, headers=headers, content=pieces())


async def _stream_result(client: openai.AsyncOpenAI, text: str) -> tuple[str, str | None, Any]:
    stream = await client.chat.completions.create(
        model="mock/echo",
        messages=[_user(text)],
        stream=True,
        stream_options={"include_usage": True},
    )
    content, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            content += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    return content, finish, usage


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, 64])
async def test_sse_split_at_any_byte_reassembles_identically(size: int) -> None:
    text = "héllo wörld 🌍 ünïcode, split mid-character"
    whole = await _stream_result(_client(), text)
    split = await _stream_result(_client(_Rechunk(size)), text)
    assert whole[0] == text
    assert split == whole
