"""bench/overhead.py plays the Lambda Web Adapter as the chat function believes it (a fresh
API Gateway request id on each request), and bench/upstream.py answers embeddings in the
shape the gateway takes. Nothing here is timed; no server runs.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from gatewayz import http
from gatewayz.chat import embeddings
from tests.bench_scripts import load

if TYPE_CHECKING:
    import pytest


load("latency_proxy")
overhead = load("overhead")
upstream = load("upstream")


def _scope(raw: bytes) -> dict[str, Any]:
    """The ASGI scope of a whole HTTP/1.1 request, as uvicorn would build it."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    line, *fields = head.split(b"\r\n")
    headers = [(n.strip().lower(), v.strip()) for n, _, v in (f.partition(b":") for f in fields)]
    return {"type": "http", "path": line.split(b" ")[1].decode(), "headers": headers}


def test_the_function_believes_the_adapters_headers_a_fresh_request_id_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", overhead.FUNCTION)
    adapter = overhead.Adapter()
    raw = overhead.request_bytes(stream=False, key="gw_live_x")
    ids = []
    for _ in range(3):
        wrapped = adapter.wrap(raw)
        assert wrapped.endswith(raw.partition(b"\r\n")[2])  # the request itself is untouched
        scope = _scope(wrapped)
        context = http.request_context(scope)
        assert context is not None
        assert context["requestId"] == adapter.last_id
        assert context["resourcePath"] == "/v1/chat/completions"
        assert context["identity"]["sourceIp"] == "203.0.113.7"
        assert abs(context["requestTimeEpoch"] / 1000 - time.time()) < 60
        assert http.request_id_of(scope) == "req_" + adapter.last_id.replace("-", "")
        deadline = http.lambda_deadline(scope)
        assert deadline is not None
        assert deadline > time.time() + 3600
        ids.append(http.request_id_of(scope))
    assert len(set(ids)) == 3


def test_outside_lambda_the_same_headers_are_not_believed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    scope = _scope(overhead.Adapter().wrap(overhead.request_bytes(stream=False)))
    assert http.request_context(scope) is None
    assert http.lambda_deadline(scope) is None


def test_the_upstream_answers_embeddings_as_the_gateway_reads_them() -> None:
    answer = upstream.answer(
        ["POST", "/v1/embeddings", "HTTP/1.1"],
        json.dumps({"model": "bench/embed", "input": ["one", "two words"]}).encode(),
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"content-length: {len(body)}".encode() in head
    payload = json.loads(body)
    vectors = embeddings._vectors(payload, 2)
    assert vectors is not None
    assert [len(v) for v in vectors] == [1536, 1536]
    assert payload["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_the_direct_history_request_carries_what_the_gateway_injects() -> None:
    direct, gateway = overhead.kind_bytes("history", "gw_live_x", "00000000-0000-0000-0000-0", 4)
    sent = json.loads(direct.partition(b"\r\n\r\n")[2])
    assert "session_id" not in sent
    # The system prompt, then the newest three of the session's alternating turns.
    assert sent["messages"] == [
        overhead.SYSTEM,
        overhead.ANSWER,
        *overhead.MESSAGES,
        overhead.ANSWER,
        *overhead.MESSAGES,
    ]
    asked = json.loads(gateway.partition(b"\r\n\r\n")[2])
    assert asked["messages"] == overhead.MESSAGES
    assert asked["history"] == {"max_tokens": overhead.HISTORY_MAX_TOKENS}


def test_inprocess_reads_the_calls_column_of_an_strace_summary() -> None:
    # strace -c as it writes it: the errors column is empty for a call that never failed.
    summary = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 25.64    0.025815           8      2980           sendto
 19.54    0.019675           4      4039      1060 recvfrom
  4.93    0.004963           4       993           getrandom
------ ----------- ----------- --------- --------- ----------------
100.00    0.100690           5      8012      1060 total
"""
    counts = load("inprocess").calls_by_syscall(summary)
    assert counts == {"sendto": 2980, "recvfrom": 4039, "getrandom": 993}
