"""The JavaScript clients people use against the gateway, run by Node: the `openai` SDK
(v5) and the Vercel AI SDK (`ai` 5 with `@ai-sdk/openai` 2), each through chat, streams,
tools, structured output, the Responses API and embeddings, against the offline mock.
The scripts live in tests/clients (package.json + lockfile; `make test` installs them when
npm exists); without Node or the packages these tests are skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.e2e.clients import nanos, recorded_costs
from tests.e2e.conftest import Account, new_account
from tests.pg import ROOT

SCRIPTS = ROOT / "tests" / "clients"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="no node here"),
    pytest.mark.skipif(
        not (SCRIPTS / "node_modules" / "@ai-sdk" / "openai").exists(),
        reason="client packages not installed (npm ci --prefix tests/clients)",
    ),
]


def run(script: str, base_url: str, account: Account) -> dict[str, Any]:
    assert NODE is not None
    env = {**os.environ, "GATEWAYZ_BASE_URL": base_url, "GATEWAYZ_API_KEY": account.secret}
    done = subprocess.run(
        [NODE, str(SCRIPTS / script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def account(offline: str) -> Account:
    return new_account()


def test_the_openai_js_sdk_is_served_and_billed_what_each_answer_reports(
    offline: str, account: Account
) -> None:
    before = account.balance()
    out = run("openai_node.mjs", offline, account)
    assert out["chat"] == "hello from node"  # the mock echoes
    assert out["stream"] == "stream this please"
    assert out["tool"]["finish_reason"] == "tool_calls"
    assert out["tool"]["name"] == "get_weather"
    assert isinstance(out["tool"]["arguments"]["city"], str)
    assert set(out["structured"]) == {"restaurant", "guests"}
    assert isinstance(out["structured"]["guests"], int)
    assert out["responses"] == {"status": "completed", "text": "respond to me"}
    assert out["responses_stream"]["text"] == "stream a response"
    assert out["responses_stream"]["deltas"] >= 1
    assert out["responses_stream"]["last"] == "response.completed"
    assert [e["index"] for e in out["embeddings"]] == [0, 1]
    assert all(e["length"] > 0 and e["numbers"] for e in out["embeddings"])
    costs = [nanos(cost) for cost in out["costs"]]
    assert all(cost > 0 for cost in costs)
    assert recorded_costs(account) == costs
    assert before - account.balance() == sum(costs)


def test_the_vercel_ai_sdk_works_through_both_apis_and_each_call_is_billed(
    offline: str, account: Account
) -> None:
    before = account.balance()
    out = run("ai_sdk.mjs", offline, account)
    assert out["responses_text"]["text"] == "hello responses"
    assert out["chat_text"]["text"] == "hello chat"
    assert out["responses_stream"]["text"] == "streamed via responses_stream"
    assert out["chat_stream"]["text"] == "streamed via chat_stream"
    for name in ("responses_text", "chat_text", "responses_stream", "chat_stream"):
        assert out[name]["usage"]["input"] > 0, name
        # The mock echoes a word a token.
        assert out[name]["usage"]["output"] == len(out[name]["text"].split()), name
    for name in ("responses_object", "chat_object"):
        assert set(out[name]) == {"restaurant", "guests"}, name
        assert isinstance(out[name]["guests"], int), name
    for name in ("responses_tool", "chat_tool"):
        assert out[name]["finishReason"] == "tool-calls", name
        [call] = out[name]["calls"]
        assert call["name"] == "weather"
        assert isinstance(call["input"]["city"], str)
    assert out["embed"]["length"] > 0
    assert out["embed"]["tokens"] == 2
    assert out["embed_many"]["count"] == 3
    costs = recorded_costs(account)
    assert len(costs) == out["calls"]
    assert all(cost > 0 for cost in costs)
    assert before - account.balance() == sum(costs)
