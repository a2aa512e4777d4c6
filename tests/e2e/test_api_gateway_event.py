"""The same request through a real API Gateway REST event and the Lambda handler gives the
same answer as over HTTP."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from tests.e2e.conftest import MODEL
from tests.functions.events import event, header, invoke

if TYPE_CHECKING:
    import openai

    from tests.e2e.conftest import Account

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "same answer both ways"}]}


def chat_event(account: Account, body: dict[str, object]) -> dict[str, object]:
    text = json.dumps(body)
    headers = {
        "Authorization": f"Bearer {account.secret}",
        "Content-Type": "application/json",
        "Content-Length": str(len(text)),
    }
    lambda_event = event("chat", "chat-completions", headers=headers, body=text)
    # API Gateway gives every request its own id (usage records are unique by it).
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())  # type: ignore[index]
    return lambda_event


def sse_text(body: str) -> str:
    """The content of a chat completion stream."""
    text = ""
    for line in body.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                text += choice.get("delta", {}).get("content") or ""
    return text


def test_the_handler_answers_like_the_server(client: openai.OpenAI, account: Account) -> None:
    raw = client.chat.completions.with_raw_response.create(**BODY)  # type: ignore[call-overload]
    over_http = raw.http_response.json()
    result_event = chat_event(account, BODY)
    result = invoke("chat", result_event)
    assert result["statusCode"] == 200, result["body"]
    through_lambda = json.loads(result["body"])
    assert through_lambda["choices"][0]["message"] == over_http["choices"][0]["message"]
    for field in ("prompt_tokens", "completion_tokens", "cost"):
        assert through_lambda["usage"][field] == over_http["usage"][field]
    request_id = result_event["requestContext"]["requestId"].replace("-", "")
    assert header(result, "x-request-id") == f"req_{request_id}"


def test_a_stream_through_the_handler_is_the_same_sse(account: Account) -> None:
    result = invoke("chat", chat_event(account, {**BODY, "stream": True}))
    assert result["statusCode"] == 200, result["body"]
    assert (header(result, "content-type") or "").startswith("text/event-stream")
    assert sse_text(result["body"]) == "same answer both ways"
    assert result["body"].rstrip().endswith("data: [DONE]")
