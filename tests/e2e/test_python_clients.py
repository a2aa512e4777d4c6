"""The Python clients people use against the gateway: LangChain's `ChatOpenAI` (chat and
Responses API, invoke, stream, tools, structured output) and `OpenAIEmbeddings`, and the
official `openai` SDK through every API in one session, against the offline mock; each
request is billed once, and the balance drops by exactly what was recorded."""

from __future__ import annotations

from typing import Any, Literal

import openai
import pydantic
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from tests.e2e.clients import nanos, recorded_costs
from tests.e2e.conftest import Account, new_account

MODEL = "mock/echo"


class Booking(pydantic.BaseModel):
    restaurant: str
    guests: int
    seating: Literal["inside", "terrace"]


class GetWeather(pydantic.BaseModel):
    """The weather in a city."""

    city: str


@pytest.fixture
def account(offline: str) -> Account:
    return new_account()


def chat_model(offline: str, account: Account, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=offline, api_key=account.secret, model=MODEL, max_retries=0, **options
    )


@pytest.mark.parametrize("use_responses_api", [False, True])
def test_langchain_chat_invokes_streams_calls_tools_and_answers_structured_output(
    offline: str, account: Account, use_responses_api: bool
) -> None:
    before = account.balance()
    llm = chat_model(offline, account, use_responses_api=use_responses_api)
    answer = llm.invoke("hello from langchain")
    assert answer.text == "hello from langchain"  # the mock echoes
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 3
    chunks = list(
        chat_model(offline, account, use_responses_api=use_responses_api, stream_usage=True).stream(
            "a streamed answer"
        )
    )
    assert "".join(chunk.text for chunk in chunks) == "a streamed answer"
    called = llm.bind_tools([GetWeather]).invoke("Weather in Lyon?")
    [call] = called.tool_calls
    assert call["name"] == "GetWeather"
    assert isinstance(GetWeather.model_validate(call["args"]).city, str)
    booking = llm.with_structured_output(Booking).invoke("Book a table")
    assert isinstance(booking, Booking)
    costs = recorded_costs(account)
    assert len(costs) == 4
    assert all(cost > 0 for cost in costs)
    assert before - account.balance() == sum(costs)


def test_langchain_embeddings_embed_documents_and_a_query(offline: str, account: Account) -> None:
    before = account.balance()
    embedder = OpenAIEmbeddings(
        base_url=offline,
        api_key=account.secret,  # type: ignore[arg-type]
        model="mock/embed",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    documents = embedder.embed_documents(["first text", "second text"])
    query = embedder.embed_query("a query")
    assert len(documents) == 2
    assert len(documents[0]) == len(query) > 0
    assert all(isinstance(value, float) for value in query)
    costs = recorded_costs(account)
    assert len(costs) == 2
    assert before - account.balance() == sum(costs)


def test_the_openai_python_sdk_through_every_api_in_one_session(
    offline: str, account: Account
) -> None:
    before = account.balance()
    sdk = openai.OpenAI(base_url=offline, api_key=account.secret, max_retries=0)
    user: Any = [{"role": "user", "content": "Book a table in Lyon"}]
    reported: list[float] = []
    chat = sdk.chat.completions.create(model=MODEL, messages=user)
    assert chat.choices[0].message.content == "Book a table in Lyon"
    reported.append(chat.usage.cost)  # type: ignore[union-attr]
    stream = sdk.chat.completions.create(
        model=MODEL, messages=user, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Book a table in Lyon"
    )
    reported.append(chunks[-1].usage.cost)  # type: ignore[union-attr]
    tool = sdk.chat.completions.parse(
        model=MODEL, messages=user, tools=[openai.pydantic_function_tool(GetWeather)]
    )
    [call] = tool.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, GetWeather)
    reported.append(tool.usage.cost)  # type: ignore[union-attr]
    parsed = sdk.chat.completions.parse(model=MODEL, messages=user, response_format=Booking)
    assert isinstance(parsed.choices[0].message.parsed, Booking)
    reported.append(parsed.usage.cost)  # type: ignore[union-attr]
    response = sdk.responses.create(model=MODEL, input="a response", store=False)
    assert response.output_text == "a response"
    reported.append(response.usage.cost)  # type: ignore[union-attr]
    embeddings = sdk.embeddings.create(model="mock/embed", input=["one", "two"])
    assert len(embeddings.data) == 2
    reported.append(embeddings.usage.cost)  # type: ignore[attr-defined]
    costs = [nanos(cost) for cost in reported]
    assert recorded_costs(account) == costs
    assert before - account.balance() == sum(costs)
