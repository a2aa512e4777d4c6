"""The Python clients people use against the gateway: LangChain's `ChatOpenAI` (chat and
Responses API, invoke, stream, tools, structured output) and `OpenAIEmbeddings`, and the
official `openai` SDK through every API in one session; each against the offline mock and
against the fake OpenAI-compatible providers (the `backend` fixture). Answers are checked
word for word (an echo; tool arguments and structured output are the values the models'
deterministic sampler gives, e.g. a string named after its property), every request is
billed exactly its tokens at the catalog's prices, and the balance drops by that sum."""

from __future__ import annotations

import struct
from typing import Any, Literal

import openai
import pydantic
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from tests.e2e.clients import Backend, check_billing, nanos
from tests.e2e.conftest import Account, new_account

# What both models answer: the arguments of GetWeather, a Booking.
WEATHER = {"city": "city"}
BOOKING = {"restaurant": "restaurant", "guests": 1, "seating": "inside"}


class Booking(pydantic.BaseModel):
    restaurant: str
    guests: int
    seating: Literal["inside", "terrace"]


class GetWeather(pydantic.BaseModel):
    """The weather in a city."""

    city: str


def float32(vector: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector)))


@pytest.fixture
def account(backend: Backend) -> Account:
    return new_account()


def chat_model(backend: Backend, account: Account, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=backend.base_url,
        api_key=account.secret,
        model=backend.chat_model,
        max_retries=0,
        **options,
    )


@pytest.mark.parametrize("use_responses_api", [False, True])
def test_langchain_chat_invokes_streams_calls_tools_and_answers_structured_output(
    backend: Backend, account: Account, use_responses_api: bool
) -> None:
    before = account.balance()
    llm = chat_model(backend, account, use_responses_api=use_responses_api)
    answer = llm.invoke("hello from langchain")
    assert answer.text == "hello from langchain"  # both models echo
    assert answer.usage_metadata is not None
    # A word a token; the prompt's one message counts 4 more.
    assert (answer.usage_metadata["input_tokens"], answer.usage_metadata["output_tokens"]) == (
        7,
        3,
    )
    streaming = chat_model(backend, account, use_responses_api=use_responses_api, stream_usage=True)
    chunks = list(streaming.stream("a streamed answer"))
    assert "".join(chunk.text for chunk in chunks) == "a streamed answer"
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert sum(u["output_tokens"] for u in usage) == 3
    called = llm.bind_tools([GetWeather]).invoke("Weather in Lyon?")
    [call] = called.tool_calls
    assert (call["name"], call["args"]) == ("GetWeather", WEATHER)
    streamed_call = None
    for chunk in llm.bind_tools([GetWeather]).stream("Weather in Lyon?"):
        streamed_call = chunk if streamed_call is None else streamed_call + chunk
    assert streamed_call is not None
    [call] = streamed_call.tool_calls  # type: ignore[attr-defined]
    assert (call["name"], call["args"]) == ("GetWeather", WEATHER)
    booking = llm.with_structured_output(Booking).invoke("Book a table")
    assert booking == Booking(**BOOKING)  # type: ignore[arg-type]
    records = check_billing(backend, account, before)
    assert len(records) == 5
    assert (records[0].input_tokens, records[0].output_tokens) == (7, 3)


def test_langchain_embeddings_embed_documents_and_a_query(
    backend: Backend, account: Account
) -> None:
    before = account.balance()
    embedder = OpenAIEmbeddings(
        base_url=backend.base_url,
        api_key=account.secret,  # type: ignore[arg-type]
        model=backend.embed_model,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    documents = embedder.embed_documents(["first text", "second text"])
    query = embedder.embed_query("a query")
    assert len(documents) == 2
    assert len(documents[0]) == len(query) > 0
    assert documents[0] != documents[1]
    assert all(isinstance(value, float) for value in query)
    records = check_billing(backend, account, before)
    assert [(r.input_tokens, r.output_tokens) for r in records] == [(4, 0), (2, 0)]


def test_the_openai_python_sdk_through_every_api_in_one_session(
    backend: Backend, account: Account
) -> None:
    before = account.balance()
    sdk = openai.OpenAI(base_url=backend.base_url, api_key=account.secret, max_retries=0)
    model, user = backend.chat_model, [{"role": "user", "content": "Book a table in Lyon"}]
    reported: list[float] = []
    chat = sdk.chat.completions.create(model=model, messages=user)  # type: ignore[arg-type]
    assert chat.choices[0].message.content == "Book a table in Lyon"
    assert chat.usage is not None
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (9, 5)
    reported.append(chat.usage.cost)  # type: ignore[attr-defined]
    stream = sdk.chat.completions.create(
        model=model,
        messages=user,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Book a table in Lyon"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    reported.append(chunks[-1].usage.cost)  # type: ignore[attr-defined]
    weather = [openai.pydantic_function_tool(GetWeather)]
    tool = sdk.chat.completions.parse(model=model, messages=user, tools=weather)  # type: ignore[arg-type]
    assert tool.choices[0].finish_reason == "tool_calls"
    [call] = tool.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == GetWeather(**WEATHER)
    reported.append(tool.usage.cost)  # type: ignore[union-attr]
    with sdk.chat.completions.stream(
        model=model,
        messages=user,  # type: ignore[arg-type]
        tools=weather,
        stream_options={"include_usage": True},
    ) as streamed:
        final = streamed.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == GetWeather(**WEATHER)
    assert final.choices[0].finish_reason == "tool_calls"
    reported.append(final.usage.cost)  # type: ignore[union-attr]
    parsed = sdk.chat.completions.parse(model=model, messages=user, response_format=Booking)  # type: ignore[arg-type]
    assert parsed.choices[0].message.parsed == Booking(**BOOKING)  # type: ignore[arg-type]
    reported.append(parsed.usage.cost)  # type: ignore[union-attr]
    response = sdk.responses.create(model=model, input="a response", store=False)
    assert response.output_text == "a response"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (6, 2)
    reported.append(response.usage.cost)  # type: ignore[attr-defined]
    floats = sdk.embeddings.create(
        model=backend.embed_model, input=["one", "two"], encoding_format="float"
    )
    reported.append(floats.usage.cost)  # type: ignore[attr-defined]
    decoded = sdk.embeddings.create(model=backend.embed_model, input=["one", "two"])  # base64
    # base64 carries float32: the floats, rounded to float32.
    assert [d.embedding for d in decoded.data] == [float32(d.embedding) for d in floats.data]
    assert [d.index for d in decoded.data] == [0, 1]
    assert decoded.usage.prompt_tokens == 2
    reported.append(decoded.usage.cost)  # type: ignore[attr-defined]
    records = check_billing(backend, account, before)
    assert [r.cost_nanos for r in records] == [nanos(cost) for cost in reported]
