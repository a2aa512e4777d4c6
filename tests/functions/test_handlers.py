"""Every function's Lambda handler, driven by real API Gateway REST events."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import reset_caches
from tests.functions.events import HTTP_GROUPS, event, header, invoke, json_body

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def small_body_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("MAX_REQUEST_BYTES", "4096")
    reset_caches()
    yield 4096
    monkeypatch.delenv("MAX_REQUEST_BYTES")
    reset_caches()


@pytest.fixture
def live_redis(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[str]:
    """The rate-limit store is the test Redis, so a health "ok" means Redis answered
    (with no Redis configured the store is this process, which always answers)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_caches()
    yield redis_url
    monkeypatch.undo()
    reset_caches()


def assert_envelope(result: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    assert result["statusCode"] == status, result["body"]
    assert (header(result, "content-type") or "").startswith("application/json")
    error = json_body(result)["error"]
    assert error["code"] == code
    assert {"message", "type", "param", "code"} <= set(error)
    assert header(result, "x-request-id")
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("group", HTTP_GROUPS)
@pytest.mark.usefixtures("live_redis")
def test_health_answers_a_real_api_gateway_event(group: str) -> None:
    lambda_event = event(group)
    result = invoke(group, lambda_event)
    assert result["statusCode"] == 200, result["body"]
    body = json_body(result)
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    request_id = lambda_event["requestContext"]["requestId"].replace("-", "")
    assert header(result, "x-request-id") == f"req_{request_id}"


@pytest.mark.parametrize("group", HTTP_GROUPS)
def test_an_unknown_path_is_a_404(group: str) -> None:
    result = invoke(group, event(group, path="/v1/definitely/not/here"))
    assert "not/here" in assert_envelope(result, 404, "not_found")["message"]


@pytest.mark.parametrize("group", HTTP_GROUPS)
def test_a_wrong_method_is_a_405(group: str) -> None:
    assert_envelope(invoke(group, event(group, httpMethod="DELETE")), 405, "method_not_allowed")


@pytest.mark.parametrize("group", HTTP_GROUPS)
def test_a_wrong_content_type_is_a_415(group: str) -> None:
    lambda_event = event(
        group,
        httpMethod="POST",
        path="/v1/anything",
        headers={"Content-Type": "text/plain", "Content-Length": "5"},
        body="hello",
    )
    assert_envelope(invoke(group, lambda_event), 415, "unsupported_media_type")


@pytest.mark.parametrize("group", HTTP_GROUPS)
def test_malformed_json_never_reaches_a_500(group: str) -> None:
    lambda_event = event(
        group,
        httpMethod="POST",
        headers={"Content-Type": "application/json", "Content-Length": "9"},
        body='{"model":',
    )
    # POST /health: the route exists but takes no body, so the method is what is wrong.
    assert_envelope(invoke(group, lambda_event), 405, "method_not_allowed")


@pytest.mark.parametrize("group", HTTP_GROUPS)
def test_an_oversized_body_is_a_413(group: str, small_body_limit: int) -> None:
    # Bodies without a Content-Length are counted as they are read: tests/unit/test_http.py.
    body = '{"x": "' + "y" * small_body_limit + '"}'
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    lambda_event = event(group, httpMethod="POST", path="/v1/anything", headers=headers, body=body)
    assert_envelope(invoke(group, lambda_event), 413, "request_too_large")


@pytest.mark.parametrize("group", HTTP_GROUPS)
def test_a_binary_body_is_refused_cleanly(group: str) -> None:
    lambda_event = event(
        group,
        httpMethod="POST",
        path="/v1/anything",
        headers={"Content-Type": "application/octet-stream", "Content-Length": "4"},
        body=base64.b64encode(b"\xff\xfe\x00\x01").decode(),
        isBase64Encoded=True,
    )
    assert_envelope(invoke(group, lambda_event), 415, "unsupported_media_type")


def test_health_names_the_database_when_it_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=2"
    )
    reset_caches()
    try:
        error = assert_envelope(invoke("chat", event("chat")), 503, "service_unavailable")
    finally:
        monkeypatch.undo()
        reset_caches()
    assert "database" in error["message"]
    assert "redis" not in error["message"]
    assert error["metadata"]["checks"]["database"] == "unreachable"
    assert error["metadata"]["checks"]["redis"] == "ok"


def test_health_names_redis_when_it_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    reset_caches()
    try:
        error = assert_envelope(invoke("keys", event("keys")), 503, "service_unavailable")
    finally:
        monkeypatch.delenv("REDIS_URL")
        reset_caches()
    assert "redis" in error["message"]
    assert error["metadata"]["checks"] == {"database": "ok", "redis": "unreachable"}


def test_health_names_a_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:9")
    reset_caches()
    try:
        error = assert_envelope(invoke("billing", event("billing")), 503, "service_unavailable")
    finally:
        monkeypatch.delenv("UPSTASH_REDIS_REST_URL")
        reset_caches()
    assert "UPSTASH_REDIS_REST_TOKEN" in error["metadata"]["checks"]["redis"]
