"""The JavaScript clients people use against the gateway, run by Node: the `openai` SDK
(v5) and the Vercel AI SDK (`ai` 5 with `@ai-sdk/openai` 2), each through chat, streams,
tools, structured output, the Responses API and embeddings, against the offline mock and
against the fake OpenAI-compatible providers (the `backend` fixture). Answers are checked
word for word (an echo; tool arguments and structured output are the values the models'
deterministic sampler gives, e.g. a string named after its property), every request is
billed exactly its tokens at the catalog's prices, and the balance drops by that sum.
The scripts live in tests/clients (package.json + lockfile; `make test` installs them when
npm exists); without Node or the packages these tests are skipped."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from typing import Any

import pytest

from tests.e2e.clients import Backend, check_billing, expected_embedding, nanos
from tests.e2e.conftest import Account, new_account
from tests.pg import ROOT

SCRIPTS = ROOT / "tests" / "clients"
NODE = shutil.which("node")
WEATHER = {"city": "city"}  # what both models call the weather tool with
BOOKING = {"restaurant": "restaurant", "guests": 1}  # and answer the booking schema with

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="no node here"),
    pytest.mark.skipif(
        not (SCRIPTS / "node_modules" / "@ai-sdk" / "openai").exists(),
        reason="client packages not installed (npm ci --prefix tests/clients)",
    ),
]


def run(script: str, backend: Backend, account: Account) -> dict[str, Any]:
    assert NODE is not None
    env = {
        **os.environ,
        "GATEWAYZ_BASE_URL": backend.base_url,
        "GATEWAYZ_API_KEY": account.secret,
        "GATEWAYZ_MODEL": backend.chat_model,
        "GATEWAYZ_EMBED_MODEL": backend.embed_model,
    }
    done = subprocess.run(
        [NODE, str(SCRIPTS / script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def float32(vector: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector)))


@pytest.fixture
def account(backend: Backend) -> Account:
    return new_account()


def test_the_openai_js_sdk_is_served_and_billed_what_each_answer_reports(
    backend: Backend, account: Account
) -> None:
    before = account.balance()
    out = run("openai_node.mjs", backend, account)
    assert out["chat"] == "hello from node"  # both models echo
    assert out["stream"] == "stream this please"
    assert out["tool"] == {
        "finish_reason": "tool_calls",
        "content": None,
        "name": "get_weather",
        "arguments": WEATHER,
    }
    assert out["tool_stream"]["finish_reason"] == "tool_calls"
    [call] = out["tool_stream"]["calls"]
    assert (call["name"], call["arguments"]) == ("get_weather", WEATHER)
    assert call["id"].startswith("call_")
    assert call["deltas"] > 1  # the arguments came in pieces
    assert out["structured"] == BOOKING
    assert out["responses"] == {"status": "completed", "text": "respond to me"}
    assert out["responses_stream"]["text"] == "stream a response"
    assert out["responses_stream"]["deltas"] == 3  # a word a delta
    assert out["responses_stream"]["last"] == "response.completed"
    texts = ["first text", "second text"]
    floats = [expected_embedding(backend, text, i) for i, text in enumerate(texts)]
    assert out["embeddings"]["floats"] == [
        {"index": i, "embedding": vector} for i, vector in enumerate(floats)
    ]
    assert out["embeddings"]["decoded"] == [
        {"index": i, "embedding": float32(vector)} for i, vector in enumerate(floats)
    ]
    usage = out["usage"]
    # A word a token; each message counts 4 more (the plain chats and responses).
    assert [(u["input"], u["output"]) for u in usage[:2]] == [(7, 3), (7, 3)]
    assert [(u["input"], u["output"]) for u in usage[-4:]] == [(7, 3), (7, 3), (4, 0), (4, 0)]
    records = check_billing(backend, account, before)
    assert [(r.input_tokens, r.output_tokens) for r in records] == [
        (u["input"], u["output"]) for u in usage
    ]
    assert [r.cost_nanos for r in records] == [nanos(u["cost"]) for u in usage]


def test_the_vercel_ai_sdk_works_through_both_apis_and_each_call_is_billed(
    backend: Backend, account: Account
) -> None:
    before = account.balance()
    out = run("ai_sdk.mjs", backend, account)
    assert out["responses_text"]["text"] == "hello responses"
    assert out["chat_text"]["text"] == "hello chat"
    assert out["responses_stream"]["text"] == "streamed via responses_stream"
    assert out["chat_stream"]["text"] == "streamed via chat_stream"
    for name in ("responses_text", "chat_text", "responses_stream", "chat_stream"):
        # A word a token; the one message counts 4 more.
        words = len(out[name]["text"].split())
        assert out[name]["usage"] == {"input": words + 4, "output": words}, name
    for name in ("responses_object", "chat_object"):
        assert out[name] == BOOKING, name
    for name in ("responses_tool", "chat_tool", "responses_tool_stream", "chat_tool_stream"):
        assert out[name]["finishReason"] == "tool-calls", name
        assert out[name]["calls"] == [{"name": "weather", "input": WEATHER}], name
        assert out[name]["usage"]["output"] > 0, name
    for name in ("responses_tool_stream", "chat_tool_stream"):
        assert json.loads(out[name]["deltas"]) == WEATHER, name  # the streamed pieces
    assert out["embed"] == {
        "embedding": expected_embedding(backend, "one text", 0),
        "tokens": 2,
    }
    values = ["first", "second", "third"]
    assert out["embed_many"] == {
        "embeddings": [expected_embedding(backend, v, i) for i, v in enumerate(values)],
        "tokens": 3,
    }
    records = check_billing(backend, account, before)
    assert len(records) == out["calls"]
    billed_tokens = [(r.input_tokens, r.output_tokens) for r in records]
    for i, name in enumerate(["responses_text", "chat_text", "responses_stream", "chat_stream"]):
        assert billed_tokens[i] == (out[name]["usage"]["input"], out[name]["usage"]["output"])
