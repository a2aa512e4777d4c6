"""`Idempotency-Key` through the chat function's real Lambda handler and API Gateway
events, offline (`mock/echo`, `mock/embed`): a replay is the first answer, charged once,
for chat (JSON and streamed), responses and embeddings alike."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from gatewayz import db
from tests.factories import new_key, new_owner
from tests.functions.events import event, header, invoke, json_body

pytestmark = pytest.mark.usefixtures("database_url")


def post(name: str, secret: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` with `Idempotency-Key: key` through the chat handler (infra/events/chat)."""
    lambda_event = event("chat", name, body=json.dumps(body))
    for headers in (lambda_event["headers"], lambda_event["multiValueHeaders"]):
        single = headers is lambda_event["headers"]
        headers.pop("Content-Length", None)
        headers["Authorization"] = f"Bearer {secret}" if single else [f"Bearer {secret}"]
        headers["Idempotency-Key"] = key if single else [key]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    return invoke("chat", lambda_event)


def balance(account_id: str) -> int:
    row = db.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def usage_rows(account_id: str) -> int:
    row = db.execute("SELECT count(*) FROM usage_records WHERE account_id = %s", (account_id,))
    return int(row.fetchone()[0])  # type: ignore[index]


CASES = [
    ("chat-completions", {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}),
    (
        "chat-completions",
        {
            "model": "mock/echo",
            "messages": [{"role": "user", "content": "hi there"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
    ("embeddings", {"model": "mock/embed", "input": ["one", "two words"]}),
    ("responses", {"model": "mock/echo", "input": "hi from the Responses API"}),
    ("responses", {"model": "mock/echo", "input": "a streamed response", "stream": True}),
]


@pytest.mark.parametrize(
    ("name", "body"),
    CASES,
    ids=["chat", "stream", "embeddings", "responses", "responses-stream"],
)
def test_the_retry_gets_the_first_answer_and_pays_nothing(name: str, body: dict[str, Any]) -> None:
    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    before = balance(owner.account_id)
    first = post(name, secret, "retry-1", body)
    assert first["statusCode"] == 200, first["body"]
    charged = before - balance(owner.account_id)
    assert charged > 0

    again = post(name, secret, "retry-1", body)

    assert again["statusCode"] == 200
    assert again["body"] == first["body"]
    assert header(again, "idempotent-replayed") == "true"
    assert header(first, "idempotent-replayed") is None
    assert header(again, "content-type") == header(first, "content-type")
    assert balance(owner.account_id) == before - charged
    assert usage_rows(owner.account_id) == 1
    if body.get("stream") and name == "chat-completions":
        assert again["body"].endswith("data: [DONE]\n\n")
    if body.get("stream") and name == "responses":
        assert "event: response.completed" in again["body"]


def test_another_body_with_the_key_is_a_409_and_runs_nothing() -> None:
    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    post("embeddings", secret, "k", {"model": "mock/embed", "input": "one"})
    before = balance(owner.account_id)
    result = post("embeddings", secret, "k", {"model": "mock/embed", "input": "two"})
    assert result["statusCode"] == 409
    assert json_body(result)["error"]["code"] == "idempotency_key_reused"
    assert header(result, "x-should-retry") == "false"
    assert balance(owner.account_id) == before
    assert usage_rows(owner.account_id) == 1


def test_a_key_without_the_route_scope_learns_nothing_of_the_stored_answer() -> None:
    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    body = {"model": "mock/embed", "input": "one"}
    assert post("embeddings", secret, "scoped", body)["statusCode"] == 200
    chat_only = new_key(owner, scopes=("chat",)).secret
    result = post("embeddings", chat_only, "scoped", body)
    assert result["statusCode"] == 403
    assert json_body(result)["error"]["code"] == "scope_denied"
