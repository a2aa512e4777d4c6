"""Calling the history function's routes as API Gateway does (a real REST event through
its Mangum handler), as a key of a given owner."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from tests.factories import new_key
from tests.functions.events import event, invoke
from tests.functions.keys_api import Reply, call

if TYPE_CHECKING:
    from gatewayz.identity.accounts import Owner


def key_of(owner: Owner, scopes: tuple[str, ...] = ("history",)) -> str:
    return new_key(owner, scopes=scopes).secret


def history(method: str, path: str, secret: str, body: Any = None, **query: str) -> Reply:
    """One request to the history function."""
    return call(method, path, secret, body, query=query or None, group="history")


def new_session(secret: str, **fields: Any) -> str:
    reply = history("POST", "/v1/chat/sessions", secret, fields)
    assert reply.status == 201, reply.body
    return str(reply.body["data"]["id"])


def append(secret: str, session_id: str, *messages: dict[str, Any], **more: Any) -> list[Any]:
    reply = history(
        "POST",
        f"/v1/chat/sessions/{session_id}/messages",
        secret,
        {"messages": list(messages), **more},
    )
    assert reply.status == 201, reply.body
    return list(reply.body["data"])


def chat(
    secret: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A chat completion through the chat function's handler (an API Gateway event)."""
    lambda_event = event("chat", "chat-completions")
    for name, value in {"Authorization": f"Bearer {secret}", **(headers or {})}.items():
        lambda_event["headers"][name] = value
        lambda_event["multiValueHeaders"][name] = [value]
    for sent in (lambda_event["headers"], lambda_event["multiValueHeaders"]):
        sent.pop("Content-Length", None)
    lambda_event["body"] = json.dumps(body)
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    return invoke("chat", lambda_event)
