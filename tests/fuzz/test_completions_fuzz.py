"""A schema-driven fuzz of `POST /v1/chat/completions` and `POST /v1/completions`
("Money that cannot leak"): no client input makes a 5xx.

Bodies come from OpenAI's published request schemas (valid ones), from wrong JSON types
and missing fields, and from a named list of hostile bodies (`hostile.HOSTILE`). Each goes
as raw bytes through the chat function's real app, with a funded key, to healthy fake
providers, so any 5xx is the gateway's own. For every answer:

- the status is below 500 (the failure message carries the server's traceback);
- a 4xx is OpenAI's error envelope with a string `code`;
- a 200 has its usage record and ledger debit, and costs more than nothing when it has
  output;
- what reached a provider is strict JSON (no NaN or Infinity);
and after each test the account's money adds up with no hold left behind.

Hypothesis runs derandomized with a fixed number of examples, so CI sees the same bodies
every run.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from gatewayz import db
from tests import ledger
from tests.fuzz import bodies, hostile
from tests.fuzz.bodies import PATHS

if TYPE_CHECKING:
    from tests.fuzz.conftest import Exchange, FuzzGateway

ENDPOINTS = ["chat", "completions"]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# -- what every answer must be ------------------------------------------------------------


def check(gateway: FuzzGateway, exchange: Exchange) -> None:
    assert exchange.status < 500, exchange.describe()
    for received in exchange.upstream:
        assert _finite(received.json), f"a non-finite number reached the provider: {received.json}"
    if exchange.status >= 400:
        check_envelope(exchange)
    elif exchange.status == 200:
        check_charged(gateway, exchange)


def check_envelope(exchange: Exchange) -> None:
    body = exchange.json()
    assert isinstance(body, dict), exchange.describe()
    error = body.get("error")
    assert isinstance(error, dict), exchange.describe()
    assert {"message", "type", "param", "code"} <= error.keys(), exchange.describe()
    assert isinstance(error["message"], str), exchange.describe()
    assert isinstance(error["type"], str), exchange.describe()
    assert isinstance(error["code"], str), exchange.describe()
    assert error["param"] is None or isinstance(error["param"], str), exchange.describe()


def check_charged(gateway: FuzzGateway, exchange: Exchange) -> None:
    assert exchange.request_id, exchange.describe()
    if exchange.headers.get("content-type", "").startswith("text/event-stream"):
        events = _sse(exchange.content)
        assert events, exchange.describe()
        assert events[-1] == "[DONE]", exchange.describe()
        chunks = [json.loads(e) for e in events[:-1]]
        assert not [c for c in chunks if "error" in c], exchange.describe()
        has_output = any(_chunk_text(c) for c in chunks)
        reported = None
    else:
        payload = exchange.json()
        assert isinstance(payload, dict), exchange.describe()
        usage = payload.get("usage")
        assert isinstance(usage, dict), exchange.describe()
        has_output = usage.get("completion_tokens", 0) > 0
        reported = round(usage["cost"] * 1e9)
    row = gateway.usage_row(exchange.request_id)
    assert row is not None, f"a 200 without a usage record\n{exchange.describe()}"
    assert row["status"] == 200, (row, exchange.describe())
    if reported is not None:
        assert row["cost_nanos"] == reported, (row, exchange.describe())
    if has_output:
        assert row["cost_nanos"] > 0, (row, exchange.describe())
        assert row["debit_nanos"] == -row["cost_nanos"], (row, exchange.describe())


def check_money(gateway: FuzzGateway) -> None:
    assert ledger.invariant_holds(db.connection(), gateway.account_id)
    assert gateway.holds() == 0, "a hold outlived its request"


def _finite(value: Any) -> bool:
    """No NaN or Infinity anywhere in a parsed JSON value (iterative: values nest deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _sse(content: bytes) -> list[str]:
    return [
        line[len("data:") :].strip()
        for line in content.decode().splitlines()
        if line.startswith("data:")
    ]


def _chunk_text(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or choice.get("text"):
            return True
    return False


# -- bodies from OpenAI's schema -------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bodies_valid_against_openai_schema(fuzz_gateway: FuzzGateway, endpoint: str) -> None:
    statuses: Counter[int] = Counter()

    @_settings(examples=60)
    @given(body=bodies.valid(endpoint))
    def run(body: dict[str, Any]) -> None:
        exchange = fuzz_gateway.post(PATHS[endpoint], bodies.dumps(body))
        statuses[exchange.status] += 1
        check(fuzz_gateway, exchange)

    run()
    assert statuses[200] > 0, f"no generated body was served: {dict(statuses)}"
    check_money(fuzz_gateway)


# -- wrong JSON types, missing fields ------------------------------------------------------------


def check_wrong_type(gateway: FuzzGateway, case: bodies.WrongType, exchange: Exchange) -> None:
    """A wrong type is a 400 naming the field; or, for a field a lenient parser could
    coerce, the provider gets the field with its right JSON type (never a string
    `max_tokens` the hold did not price, a `stream: "yes"`, an `n: true`)."""
    check(gateway, exchange)
    if exchange.status == 400:
        param = exchange.json()["error"]["param"] or ""
        assert param.split(".")[0].split("[")[0] == case.field, exchange.describe()
        assert not exchange.upstream, exchange.describe()
        return
    assert case.field not in bodies.MUST_REFUSE, exchange.describe()
    for received in exchange.upstream:
        forwarded = received.json.get(case.field)
        assert forwarded is None or bodies.has_type(case.kind, forwarded), (
            f"the provider got {case.field}={forwarded!r}\n{exchange.describe()}"
        )


@pytest.mark.parametrize(
    "case",
    bodies.wrong_type_examples(),
    ids=lambda c: f"{c.endpoint}:{c.field}={json.dumps(c.value)}",
)
def test_wrong_json_type(fuzz_gateway: FuzzGateway, case: bodies.WrongType) -> None:
    check_wrong_type(fuzz_gateway, case, fuzz_gateway.post(PATHS[case.endpoint], case.raw))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_json_types_generated(fuzz_gateway: FuzzGateway, endpoint: str) -> None:
    @_settings(examples=50)
    @given(case=bodies.wrong_type(endpoint))
    def run(case: bodies.WrongType) -> None:
        check_wrong_type(fuzz_gateway, case, fuzz_gateway.post(PATHS[endpoint], case.raw))

    run()
    check_money(fuzz_gateway)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_required_fields(fuzz_gateway: FuzzGateway, endpoint: str) -> None:
    for fields, raw in bodies.missing_required(endpoint):
        exchange = fuzz_gateway.post(PATHS[endpoint], raw)
        check(fuzz_gateway, exchange)
        assert exchange.status == 400, exchange.describe()
        assert exchange.json()["error"]["param"] in fields, exchange.describe()
        assert not exchange.upstream


# -- hostile bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", hostile.HOSTILE, ids=lambda c: f"{c.endpoint}:{c.id}")
def test_hostile_body(fuzz_gateway: FuzzGateway, case: hostile.Hostile) -> None:
    exchange = fuzz_gateway.post(case.path, case.raw)
    check(fuzz_gateway, exchange)
    if case.expect == "400":
        assert exchange.status == 400, exchange.describe()
        assert not exchange.upstream, f"sent upstream: {exchange.upstream[0].json!r:.300}"
    check_money(fuzz_gateway)


# -- the output cap ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_forwarded_request_carries_an_integer_output_cap(
    fuzz_gateway: FuzzGateway, endpoint: str, stream: bool
) -> None:
    """docs/architecture.md, step 5: whatever the client sent, the provider is told the most it may
    write, as an integer the hold covers."""
    raw = bodies.dumps(bodies.base(endpoint, max_tokens=..., stream=stream))
    exchange = fuzz_gateway.post(PATHS[endpoint], raw)
    check(fuzz_gateway, exchange)
    assert exchange.status == 200, exchange.describe()
    for received in exchange.upstream:
        caps = [received.json.get(f) for f in ("max_tokens", "max_completion_tokens")]
        assert any(bodies.has_type("integer", c) and c > 0 for c in caps), received.json
    check_money(fuzz_gateway)
