"""Calling the billing function's routes as API Gateway does (a real REST event through
its Mangum handler), and the chat function's completions with a key."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from tests.functions.events import event, header, invoke, json_body
from tests.functions.keys_api import CLIENT_IP


@dataclass(frozen=True)
class Reply:
    """A response: its status, its JSON body (None when not JSON), the raw body, and
    its Content-Type."""

    status: int
    body: Any
    raw: str
    content_type: str | None = None

    @property
    def code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error["code"] if error else None


def call(
    method: str,
    path: str,
    secret: str | None = None,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> Reply:
    """One request to the billing function (`body` None when the answer is not JSON)."""
    sent = {"Host": "api.example.com", **(headers or {})}
    if secret is not None:
        sent["Authorization"] = f"Bearer {secret}"
    raw_body = None
    if body is not None:
        raw_body = body if isinstance(body, str) else json.dumps(body)
        sent["Content-Type"] = "application/json"
    lambda_event = event(
        "billing",
        httpMethod=method,
        path=path,
        headers=sent,
        body=raw_body,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
    )
    lambda_event["requestContext"]["identity"]["sourceIp"] = CLIENT_IP
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    result = invoke("billing", lambda_event)
    try:
        parsed = json_body(result)
    except ValueError:
        parsed = None
    return Reply(result["statusCode"], parsed, result["body"], header(result, "content-type"))


def chat(secret: str, text: str = "hello there", **fields: Any) -> Reply:
    """A non-streamed chat completion of `mock/echo` through the chat function."""
    body = json.dumps(
        {"model": "mock/echo", "messages": [{"role": "user", "content": text}], **fields}
    )
    lambda_event = event("chat", "chat-completions", body=body)
    sent = {"Authorization": f"Bearer {secret}", "Content-Length": str(len(body.encode()))}
    for name, value in sent.items():
        lambda_event["headers"][name] = value
        lambda_event["multiValueHeaders"][name] = [value]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    result = invoke("chat", lambda_event)
    return Reply(result["statusCode"], json_body(result), result["body"])
