"""`POST /v1/responses` through the chat function's real handler and API Gateway events,
with no provider key: the offline `mock/echo` answers a Response object, billed as a chat
completion, and a bad request is a 400 naming the Responses field before any hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatewayz import db
from tests.factories import new_key, new_owner
from tests.functions.events import event, invoke, json_body, sent_with_key

pytestmark = pytest.mark.usefixtures("database_url")


def respond(secret: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST `body` (default: the sample event's) to /v1/responses through the handler."""
    lambda_event = event("chat", "responses")
    if body is not None:
        lambda_event["body"] = json.dumps(body)
    return invoke("chat", sent_with_key(lambda_event, secret))


def balance(account_id: str) -> int:
    row = db.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_sample_event_is_answered_as_a_response_and_billed() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    result = respond(key.secret)
    assert result["statusCode"] == 200, result["body"]
    body = json_body(result)
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["instructions"] == "Be brief."
    assert body["store"] is False
    [item] = body["output"]
    assert item["content"] == [
        {"type": "output_text", "text": "hi", "annotations": [], "logprobs": []}
    ]
    usage = body["usage"]
    # Two messages (the instructions' and the input's): words + 4 each.
    assert usage["input_tokens"] == (2 + 4) + (1 + 4)
    assert usage["output_tokens"] == 1
    expected = usage["input_tokens"] * 1000 + usage["output_tokens"] * 2000
    assert round(usage["cost"] * 1e9) == expected
    assert before - balance(owner.account_id) == expected
    row = db.execute(
        "SELECT endpoint, model FROM usage_records WHERE account_id = %s", (owner.account_id,)
    ).fetchone()
    assert row == ("responses", "mock/echo")


def test_a_bad_request_is_a_400_naming_the_responses_field_and_holds_nothing() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    image = [{"role": "user", "content": [{"type": "input_image"}]}]
    bodies: list[tuple[dict[str, Any], str]] = [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "background": True}, "background"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": image}, "input[0].content[0].image_url"),
        ({"input": "x", "tool_choice": {"type": "mcp"}}, "tool_choice"),
        ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.schema"),
        ({"input": "x", "temperature": "hot"}, "temperature"),
        ({"input": "x", "model": None}, "model"),
    ]
    for body, param in bodies:
        result = respond(key.secret, {"model": "mock/echo", **body})
        assert result["statusCode"] == 400, body
        error = json_body(result)["error"]
        assert error["param"] == param, body
        assert error["type"] == "invalid_request_error"
    assert balance(owner.account_id) == before
    holds = db.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = %s", (owner.account_id,)
    ).fetchone()
    assert holds == (0,)


def test_a_key_without_the_chat_scope_is_refused() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner, scopes=("embeddings",))
    result = respond(key.secret)
    assert result["statusCode"] == 403
    assert json_body(result)["error"]["code"] == "scope_denied"
