"""Calling the billing function's routes as API Gateway does (a real REST event through
its Mangum handler), and the chat function's completions with a key."""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

from tests.functions import keys_api
from tests.functions.events import event, invoke, json_body
from tests.functions.keys_api import Reply

call = functools.partial(keys_api.call, group="billing")


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
