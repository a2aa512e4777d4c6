"""The fake OpenAI-compatible upstream (tests/fakes/openai_upstream.py), driven by the
official `openai` SDK over real HTTP, so the tests built on it can trust what it sends."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import SECRET, Behaviour, FakeUpstream, embedding, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

MESSAGE = "Tell me a short story"
TOOL_CALLS: list[dict[str, Any]] = [
    {
        "id": "call_weather",
        "type": "function",
        "function": {
            "name": "get_weather",
            "arguments": json.dumps({"city": "Paris", "unit": "C"}),
        },
    },
    {
        "id": "call_time",
        "type": "function",
        "function": {"name": "get_time", "arguments": json.dumps({"timezone": "Europe/Paris"})},
    },
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with serve() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        yield sdk


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _stream(client: openai.OpenAI, **kwargs: Any) -> list[Any]:
    kwargs = {"model": "fake/echo", "messages": _user(MESSAGE), "stream": True, **kwargs}
    return list(client.chat.completions.create(**kwargs))


def _chain(exc: BaseException | None) -> list[str]:
    """The class names of an exception and its causes."""
    names = []
    while exc is not None:
        names.append(type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    return names


def test_non_streamed_echo_with_usage(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
    assert completion.object == "chat.completion"
    assert completion.model == "fake/echo"
    assert completion.choices[0].message.content == MESSAGE
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == len(MESSAGE.split()) + 4
    assert completion.usage.completion_tokens == len(MESSAGE.split())
    assert completion.usage.total_tokens == 2 * len(MESSAGE.split()) + 4


def test_explicit_content_usage_and_finish_reason(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 20},
    }
    fake.enqueue(Behaviour(content="scripted answer", usage=usage, finish_reason="content_filter"))
    completion = client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
    assert completion.choices[0].message.content == "scripted answer"
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 150
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 100
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 20


def test_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = _stream(client, stream_options={"include_usage": True})
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == MESSAGE
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(MESSAGE.split())
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_stream_without_usage_request_or_when_ignored(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    assert all(c.usage is None and c.choices for c in _stream(client))
    fake.enqueue(Behaviour(usage_in_stream=False))
    chunks = _stream(client, stream_options={"include_usage": True})
    assert all(c.usage is None and c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_max_tokens_truncates(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="fake/echo", messages=_user(MESSAGE), max_tokens=2
    )
    assert completion.choices[0].message.content == " ".join(MESSAGE.split()[:2])
    assert completion.choices[0].finish_reason == "length"


def test_tool_calls_non_streamed(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(tool_calls=TOOL_CALLS))
    completion = client.chat.completions.create(model="fake/tools", messages=_user("weather?"))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    got = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    want = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in TOOL_CALLS]
    assert got == want


def test_tool_calls_streamed_accumulate_in_the_sdk(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    fake.enqueue(Behaviour(tool_calls=TOOL_CALLS))
    with client.chat.completions.stream(
        model="fake/tools", messages=_user("weather?"), stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    got = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    want = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in TOOL_CALLS]
    assert got == want
    assert final.usage is not None
    assert final.usage.completion_tokens > 0


def test_enqueued_error_then_the_default(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(status=500), Behaviour(status=429, headers={"retry-after": "7"}))
    with pytest.raises(openai.InternalServerError) as server_error:
        client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
    assert SECRET in server_error.value.response.text  # the gateway must hide this
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
    assert limited.value.response.headers["retry-after"] == "7"
    completion = client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
    assert completion.choices[0].message.content == MESSAGE


def test_default_behaviour_is_settable(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.default = Behaviour(status=503, error_body="plain text outage")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
        assert failed.value.status_code == 503
        assert failed.value.response.text == "plain text outage"


def test_delay_longer_than_the_timeout(fake: FakeUpstream) -> None:
    fake.enqueue(Behaviour(delay_s=2.0))
    with (
        openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=0.2) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))


def test_cut_after_breaks_the_stream(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(cut_after=2, usage_every_chunk=True))
    seen: list[Any] = []
    # openai wraps the transport's error (httpx or httpx2, by SDK version) in APIConnectionError.
    with pytest.raises((openai.APIError, httpx.RemoteProtocolError)) as broken:  # noqa: PT012
        for chunk in client.chat.completions.create(
            model="fake/echo",
            messages=_user(MESSAGE),
            stream=True,
            stream_options={"include_usage": True},
        ):
            seen.append(chunk)
    assert "RemoteProtocolError" in _chain(broken.value)
    assert len(seen) == 1 + 2  # the role chunk, then two words
    assert "".join(c.choices[0].delta.content or "" for c in seen) == " ".join(MESSAGE.split()[:2])
    assert all(c.choices and c.choices[0].finish_reason is None for c in seen)
    assert seen[-1].usage is not None
    assert seen[-1].usage.completion_tokens == 2  # what a gateway may charge for


def test_cut_after_seen_by_raw_httpx(fake: FakeUpstream) -> None:
    fake.enqueue(Behaviour(cut_after=1))
    received: list[bytes] = []
    body = {"model": "fake/echo", "messages": _user(MESSAGE), "stream": True}
    with httpx.stream("POST", f"{fake.base_url}/chat/completions", json=body) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            received.extend(response.iter_raw())
    assert b"[DONE]" not in b"".join(received)
    assert b"".join(received).count(b"data: ") == 2  # the role chunk and one word


def test_cut_after_on_a_non_streamed_answer(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(cut_after=0))
    with pytest.raises(openai.APIConnectionError) as broken:
        client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
    assert "RemoteProtocolError" in _chain(broken.value)


@pytest.mark.parametrize("stream", [False, True])
def test_drop_connection_ends_it_before_any_status_line(fake: FakeUpstream, stream: bool) -> None:
    fake.enqueue(Behaviour(drop_connection=True))
    body = {"model": "fake/echo", "messages": _user(MESSAGE), "stream": stream}
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.post(f"{fake.base_url}/chat/completions", json=body)
    assert len(fake.requests) == 1
    # The fake itself goes on: the next request is answered.
    assert httpx.post(f"{fake.base_url}/chat/completions", json=body).status_code == 200


def test_a_held_request_is_answered_only_once_released(fake: FakeUpstream) -> None:
    arrived, release = threading.Event(), threading.Event()
    fake.enqueue(Behaviour(received=arrived, release=release, content="at last"))
    body = {"model": "fake/echo", "messages": _user(MESSAGE)}
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(httpx.post, f"{fake.base_url}/chat/completions", json=body)
        assert arrived.wait(10)
        # While it waits, the fake serves others.
        other = httpx.post(f"{fake.base_url}/chat/completions", json=body)
        assert other.json()["choices"][0]["message"]["content"] == MESSAGE
        assert not held.done()
        release.set()
        answer = held.result(timeout=10)
    assert answer.json()["choices"][0]["message"]["content"] == "at last"


def test_mid_stream_error_raises_in_the_sdk(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(mid_stream_error={"message": "model overloaded", "code": "overloaded"}))
    seen: list[Any] = []
    with pytest.raises(openai.APIError, match="model overloaded"):  # noqa: PT012
        for chunk in client.chat.completions.create(
            model="fake/echo", messages=_user(MESSAGE), stream=True
        ):
            seen.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in seen) == MESSAGE


def test_chunk_delay_keeps_the_content(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(chunk_delay_s=0.01, content="slow but complete"))
    chunks = _stream(client)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "slow but complete"


def test_legacy_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="fake/echo", prompt="once upon a time")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "once upon a time"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4
    chunks = list(
        client.completions.create(
            model="fake/echo",
            prompt=["once upon", "a time"],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "once upon a time"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_models_and_unknown_paths(fake: FakeUpstream, client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data]
    with pytest.raises(openai.NotFoundError):
        client.moderations.create(model="fake/echo", input="x")
    response = httpx.post(f"{fake.base_url}/chat/completions", content=b"{oops")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_embeddings_answer_one_float_vector_per_input(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    answer = client.embeddings.create(
        model="fake/embed", input=["a b", "c"], dimensions=5, encoding_format="float"
    )
    assert [d.embedding for d in answer.data] == [embedding("a b", 0, 5), embedding("c", 1, 5)]
    assert answer.usage.prompt_tokens == 3
    assert fake.last.json["dimensions"] == 5


def test_requests_are_recorded(fake: FakeUpstream, client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model="fake/echo",
        messages=_user(MESSAGE),
        max_tokens=50,
        extra_headers={"X-Title": "Gatewayz"},
        extra_body={"usage": {"include": True}},
    )
    assert len(fake.requests) == 1
    received = fake.last
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.headers["authorization"] == "Bearer k"
    assert received.headers["x-title"] == "Gatewayz"
    assert received.json == {
        "model": "fake/echo",
        "messages": _user(MESSAGE),
        "max_tokens": 50,
        "usage": {"include": True},
    }
    fake.reset()
    assert fake.requests == []


def test_reset_empties_the_queue(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.enqueue(Behaviour(status=500))
    fake.reset()
    completion = client.chat.completions.create(model="fake/echo", messages=_user(MESSAGE))
    assert completion.choices[0].message.content == MESSAGE


def test_a_hundred_concurrent_requests(fake: FakeUpstream, client: openai.OpenAI) -> None:
    def ask(i: int) -> str | None:
        stream = i % 2 == 1
        text = f"request number {i}"
        if stream:
            chunks = client.chat.completions.create(
                model="fake/echo", messages=_user(text), stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in chunks)
        completion = client.chat.completions.create(model="fake/echo", messages=_user(text))
        return completion.choices[0].message.content

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(ask, range(100)))
    assert answers == [f"request number {i}" for i in range(100)]
    assert len(fake.requests) == 100
