"""A stream's first token reaches the client as soon as it is relayed: when one read from
the provider brings the whole answer, the event that first says something goes out in
its own send, before the rest of that read is worked through (docs/architecture.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gatewayz.chat import upstream
from tests.asgi import chat_completion_scope
from tests.e2e.conftest import MODEL, new_account
from tests.fakes.openai_upstream import Behaviour
from tests.functions.events import function

HELLO = [{"role": "user", "content": "one two three four five six"}]


def bodies(secret: str, body: dict[str, Any]) -> list[bytes]:
    """The body of each ASGI message the chat function sent, in order."""
    raw = json.dumps(body).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()  # the client stays
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = chat_completion_scope(secret)

    async def serve() -> None:
        await function("chat").app(scope, receive, send)
        await upstream.close_pool()  # this loop's connections to the provider

    asyncio.run(serve())
    assert sent[0]["status"] == 200
    return [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]


def contents(data: bytes) -> list[str]:
    """The content pieces of the chat chunks in `data`."""
    events = [line[6:] for line in data.split(b"\n") if line.startswith(b"data: {")]
    deltas = [c["delta"] for e in events for c in json.loads(e)["choices"]]
    return [d["content"] for d in deltas if d.get("content")]


def test_the_first_token_goes_out_before_the_rest_of_its_read(gateway: str, upstreams: Any) -> None:
    upstreams.primary.enqueue(Behaviour(one_write=True))
    account = new_account()

    sent = bodies(account.secret, {"model": MODEL, "messages": HELLO, "stream": True})

    assert len(contents(sent[0])) == 1  # the role chunk and the first token, alone
    assert b"[DONE]" not in sent[0]
    words = [piece for data in sent for piece in contents(data)]
    assert "".join(words).split() == HELLO[0]["content"].split()  # nothing lost or repeated
    assert sent[-1].endswith(b"data: [DONE]\n\n")
