"""bench/latency_floor.py's server does the money work it stands for (bench/README.md): each
completion, streamed or not, holds credits before the upstream call and settles after it,
one usage row and one ledger entry a request, no hold left, `usage.cost` what was
charged. A floor that skipped any of it would measure less than a billed request costs.
Nothing here is timed.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from tests import factories
from tests.bench_scripts import load

if TYPE_CHECKING:
    import psycopg
    import pytest


latency_floor = load("latency_floor")
upstream = load("upstream")


async def _post(body: dict[str, Any]) -> tuple[int, bytes]:
    """One request through the floor's ASGI app: (status, the whole body)."""
    raw = json.dumps(body).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    await latency_floor.app(scope, receive, send)
    assert sent[-1].get("more_body", False) is False  # the answer ended
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_each_request_is_held_settled_and_charged_once(
    conn: psycopg.Connection, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gatewayz import adb

    owner = factories.new_owner()
    factories.fund(owner.account_id, 10**12)
    key = factories.new_key(owner)
    server = await asyncio.get_running_loop().create_server(upstream.Upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("FLOOR_ACCOUNT_ID", owner.account_id)
    monkeypatch.setenv("FLOOR_KEY_ID", key.id)
    monkeypatch.setenv("OPENROUTER_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setattr(latency_floor, "_floor", None)
    messages = [{"role": "user", "content": "hi"}]
    try:
        status, body = await _post({"model": "bench/echo", "messages": messages})
        streamed_status, streamed = await _post(
            {"model": "bench/echo", "messages": messages, "stream": True}
        )
    finally:
        server.close()
        adb.forget()
        if latency_floor._floor is not None:
            latency_floor._floor.connection.disconnect()

    assert (status, streamed_status) == (200, 200)
    answer = json.loads(body)
    events = [e.removeprefix(b"data: ") for e in streamed.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    usage_event = json.loads(events[-2])
    words = [json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-2]]
    assert "".join(words) == "".join(upstream.WORDS)  # every word passed on
    rows = conn.execute(
        """SELECT u.streamed, u.cost_nanos, t.amount_nanos
             FROM usage_records u JOIN credit_transactions t ON t.usage_record_id = u.id
            WHERE u.account_id = %s ORDER BY u.streamed""",
        (owner.account_id,),
    ).fetchall()
    expected = upstream.USAGE["prompt_tokens"] * 1000 + upstream.USAGE["completion_tokens"] * 2000
    assert rows == [(False, expected, -expected), (True, expected, -expected)]
    assert answer["usage"]["cost"] == usage_event["usage"]["cost"] == expected / 1e9
    holds = conn.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = %s", (owner.account_id,)
    ).fetchone()
    assert holds == (0,)
