"""The chat function with no provider key configured: the offline `mock` provider serves
`mock/echo`, through the real handler and API Gateway events."""

from __future__ import annotations

import json
import uuid

import pytest

from gatewayz import db
from tests.factories import new_key, new_owner
from tests.functions.events import event, header, invoke, json_body

pytestmark = pytest.mark.usefixtures("database_url")


def test_only_the_mock_models_are_listed() -> None:
    result = invoke("chat", event("chat", path="/v1/models", resource="/v1/models"))
    assert result["statusCode"] == 200
    assert [m["id"] for m in json_body(result)["data"]] == ["mock/echo", "mock/embed", "mock/image"]


def test_the_sample_event_with_its_placeholder_key_is_refused() -> None:
    result = invoke("chat", event("chat", "chat-completions"))
    assert result["statusCode"] == 401
    assert json_body(result)["error"]["code"] == "invalid_api_key"


def test_the_sample_event_with_a_real_key_is_answered_and_billed() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    lambda_event = event("chat", "chat-completions")
    lambda_event["headers"]["Authorization"] = f"Bearer {key.secret}"
    lambda_event["multiValueHeaders"]["Authorization"] = [f"Bearer {key.secret}"]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    result = invoke("chat", lambda_event)
    assert result["statusCode"] == 200, result["body"]
    body = json.loads(result["body"])
    assert body["choices"][0]["message"]["content"] == "hi"
    assert body["provider"] == "mock"
    # $1 / $2 per million tokens, the mock's price.
    expected = body["usage"]["prompt_tokens"] * 1000 + body["usage"]["completion_tokens"] * 2000
    assert round(body["usage"]["cost"] * 1e9) == expected
    balance = db.execute(
        "SELECT balance_nanos FROM accounts WHERE id = %s", (owner.account_id,)
    ).fetchone()
    assert balance == (10_000_000_000 - expected,)
    assert header(result, "x-ratelimit-remaining-requests") is not None
