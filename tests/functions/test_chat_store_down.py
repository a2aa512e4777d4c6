"""The chat function when its rate-limit store is down or missing,
through the real handler and API Gateway events: `RATE_LIMIT_FAILURE` decides between
serving (counted in a metric) and a 503; `/health` says so; and inside Lambda, no shared
store configured is a 503 naming REDIS_URL, never a silent per-sandbox store."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import config
from tests.conftest import reset_caches
from tests.factories import new_key, new_owner
from tests.functions.events import event, invoke, json_body

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("database_url")
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set variables on the returned monkeypatch, then `reset_caches()`; undone after."""
    monkeypatch.delenv("GATEWAYZ_METRICS", raising=False)
    yield monkeypatch
    monkeypatch.undo()
    reset_caches()


def completion(secret: str) -> dict[str, Any]:
    """The sample chat event with `secret` as its key and a fresh request id."""
    lambda_event = event("chat", "chat-completions")
    lambda_event["headers"]["Authorization"] = f"Bearer {secret}"
    lambda_event["multiValueHeaders"]["Authorization"] = [f"Bearer {secret}"]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    return invoke("chat", lambda_event)


def metric_names(out: str) -> list[str]:
    """The EMF metrics in `out` (log lines are JSON too, without `_aws`)."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    directives = [d for line in lines if "_aws" in line for d in line["_aws"]["CloudWatchMetrics"]]
    return [metric["Name"] for directive in directives for metric in directive["Metrics"]]


def test_failing_open_serves_and_counts_the_outage(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_key(new_owner(plan_id="trial")).secret
    env.setenv("REDIS_URL", DOWN)
    reset_caches()
    capsys.readouterr()
    result = completion(secret)
    assert result["statusCode"] == 200, result["body"]
    assert "RateLimitStoreUnavailable" in metric_names(capsys.readouterr().out)


def test_failing_closed_refuses_with_a_retryable_503(env: pytest.MonkeyPatch) -> None:
    secret = new_key(new_owner(plan_id="trial")).secret
    env.setenv("REDIS_URL", DOWN)
    env.setenv("RATE_LIMIT_FAILURE", "closed")
    reset_caches()
    result = completion(secret)
    assert result["statusCode"] == 503, result["body"]
    error = json_body(result)["error"]
    assert error["code"] == "service_unavailable"
    assert "Rate limiting" in error["message"]
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    assert "x-should-retry" not in headers


def test_health_names_an_unreachable_redis(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", DOWN)
    reset_caches()
    result = invoke("chat", event("chat"))
    assert result["statusCode"] == 503, result["body"]
    error = json_body(result)["error"]
    assert "redis" in error["message"]
    assert error["metadata"]["checks"] == {"database": "ok", "redis": "unreachable"}


def test_in_lambda_no_shared_store_is_a_503_naming_redis_url(env: pytest.MonkeyPatch) -> None:
    secret = new_key(new_owner(plan_id="trial")).secret
    env.setenv("KEY_HASH_SECRET", config.key_hash_secret().decode())  # the pepper of `secret`
    env.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-chat")
    reset_caches()
    result = completion(secret)
    assert result["statusCode"] == 503, result["body"]
    error = json_body(result)["error"]
    assert (error["code"], error["metadata"]) == ("missing_configuration", {"setting": "REDIS_URL"})
    health = invoke("chat", event("chat"))
    assert health["statusCode"] == 503
    assert "REDIS_URL" in json_body(health)["error"]["metadata"]["checks"]["redis"]
