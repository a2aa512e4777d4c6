"""The app factory's edges: every error in the OpenAI envelope, never HTML."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from gatewayz import errors
from gatewayz.http import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator

router = APIRouter()


class Message(BaseModel):
    role: str
    content: str


class Body(BaseModel):
    model: str
    messages: list[Message]


@router.post("/v1/echo")
async def echo(body: Body, request: Request) -> dict[str, object]:
    request.state.response_headers["x-ratelimit-limit-requests"] = "10"
    return {"model": body.model, "n": len(body.messages)}


@router.get("/v1/fail")
async def fail() -> None:
    raise RuntimeError("secret detail sk_live_123")


@router.get("/v1/denied")
async def denied() -> None:
    raise errors.InsufficientCredits("no money", metadata={"limit_source": "credits"})


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app("test", [router], health=False), raise_server_exceptions=False) as c:
        yield c


def envelope(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def test_a_good_request_gets_a_request_id_and_the_route_headers(client: TestClient) -> None:
    response = client.post(
        "/v1/echo", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200
    assert response.json() == {"model": "m", "n": 1}
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-ratelimit-limit-requests"] == "10"


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/v1/echo", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert envelope(response)["code"] == "invalid_json"


def test_a_missing_field_names_the_param(client: TestClient) -> None:
    response = client.post("/v1/echo", json={"model": "m", "messages": [{"role": "user"}]})
    assert response.status_code == 400
    error = envelope(response)
    assert error["param"] == "messages[0].content"
    assert error["type"] == "invalid_request_error"


def test_a_missing_body_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/echo", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "required" in str(envelope(response)["message"]).lower()


def test_the_wrong_content_type_is_a_415(client: TestClient) -> None:
    response = client.post(
        "/v1/echo",
        content=b"model=m",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert envelope(response)["code"] == "unsupported_media_type"


def test_unknown_path_and_wrong_method(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404
    assert envelope(missing)["code"] == "not_found"
    wrong = client.get("/v1/echo")
    assert wrong.status_code == 405
    assert envelope(wrong)["code"] == "method_not_allowed"


def test_an_oversized_body_is_a_413_by_header_and_by_count(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("MAX_REQUEST_BYTES", "1000")
    reset_caches()
    try:
        big = b'{"model": "' + b"x" * 2000 + b'", "messages": []}'
        by_header = client.post(
            "/v1/echo", content=big, headers={"content-type": "application/json"}
        )
        assert by_header.status_code == 413
        assert envelope(by_header)["code"] == "request_too_large"

        def chunks() -> Iterator[bytes]:
            yield big[:600]
            yield big[600:]

        streamed = client.post(
            "/v1/echo", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
    finally:
        monkeypatch.delenv("MAX_REQUEST_BYTES")
        reset_caches()


def test_a_content_length_of_non_ascii_digits_is_not_a_size() -> None:
    # Header bytes are read as latin-1, where "\u00b2" (superscript two) is a digit to
    # `str.isdigit` but not to `int`: it must not reach `int` (a 500).
    from gatewayz import http

    scope = {
        "method": "POST",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"\xb2")],
    }
    assert http._refuse_body(scope) is None


def test_an_unexpected_error_is_masked(client: TestClient) -> None:
    response = client.get("/v1/fail")
    assert response.status_code == 500
    error = envelope(response)
    assert error["code"] == "internal_error"
    assert "sk_live" not in response.text
    assert response.headers["x-request-id"] in str(error["message"])


def test_a_gateway_error_keeps_its_metadata_and_retry_hint(client: TestClient) -> None:
    response = client.get("/v1/denied")
    assert response.status_code == 402
    assert envelope(response)["metadata"] == {"limit_source": "credits"}
    assert response.headers["x-should-retry"] == "false"


def test_the_adapters_context_header_is_believed_only_inside_lambda(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = '{"requestId": "0f0e0d0c-0b0a-0908-0706-050403020100"}'
    outside = client.get("/v1/nothing", headers={"x-amzn-request-context": context})
    assert outside.headers["x-request-id"] != "req_0f0e0d0c0b0a09080706050403020100"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-chat")
    inside = client.get("/v1/nothing", headers={"x-amzn-request-context": context})
    assert inside.headers["x-request-id"] == "req_0f0e0d0c0b0a09080706050403020100"


# --- direct routes: the hot POST routes skip FastAPI's routing and middleware ----------

direct_router = APIRouter()


@direct_router.post("/v1/hot")
async def hot(request: Request) -> JSONResponse:
    request.state.response_headers["x-ratelimit-limit-requests"] = "5"
    if (await request.json()).get("refuse"):
        raise errors.InsufficientCredits("no money")
    if (await request.json()).get("crash"):
        raise RuntimeError("secret detail sk_live_456")
    # FastAPI's router puts the matched route in the scope; the direct path does not.
    return JSONResponse({"routed": "route" in request.scope, "app": request.app.title})


@direct_router.get("/v1/hot")
async def hot_get() -> dict[str, str]:
    return {"via": "router"}


@pytest.mark.parametrize("direct", [(), ("/v1/hot",)])
def test_a_direct_route_answers_as_a_routed_one(direct: tuple[str, ...]) -> None:
    app = create_app("test", [direct_router], health=False, direct=direct)
    with TestClient(app, raise_server_exceptions=False) as c:
        ok = c.post("/v1/hot", json={})
        assert ok.status_code == 200
        assert ok.json() == {"routed": not direct, "app": "gatewayz-test"}
        assert ok.headers["x-request-id"].startswith("req_")
        assert ok.headers["x-ratelimit-limit-requests"] == "5"
        refused = c.post("/v1/hot", json={"refuse": True})
        assert (refused.status_code, envelope(refused)["code"]) == (402, "insufficient_credits")
        crashed = c.post("/v1/hot", json={"crash": True})
        assert crashed.status_code == 500
        assert "sk_live" not in crashed.text
        assert c.get("/v1/hot").json() == {"via": "router"}  # other methods: the router
        wrong = c.put("/v1/hot", json={})
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET, POST, OPTIONS"
        not_json = c.post("/v1/hot", content=b"{}", headers={"content-type": "text/plain"})
        assert not_json.status_code == 415


def test_a_direct_route_must_take_only_the_request() -> None:
    with pytest.raises(TypeError, match="takes only `request`"):
        create_app("test", [router], health=False, direct=("/v1/echo",))


def _direct_request(*messages: dict[str, object]) -> Request:
    """A direct route's request, whose client sends `messages`."""
    from gatewayz.http import _Request

    queue = list(messages)

    async def receive() -> dict[str, object]:
        return queue.pop(0)

    return _Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


def test_a_direct_routes_body_is_read_whole_then_served_as_starlette_serves_it() -> None:
    async def scenario() -> None:
        request = _direct_request(
            {"type": "http.request", "body": b'{"a": ', "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b"1}", "more_body": False},
        )
        assert await request.body() == b'{"a": 1}'
        assert await request.body() == b'{"a": 1}'  # kept, not read again
        assert await request.json() == {"a": 1}
        assert [chunk async for chunk in request.stream()] == [b'{"a": 1}', b""]

    asyncio.run(scenario())


def test_a_client_that_leaves_mid_body_is_a_disconnect() -> None:
    from starlette.requests import ClientDisconnect

    async def scenario() -> None:
        request = _direct_request(
            {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
        )
        with pytest.raises(ClientDisconnect):
            await request.body()
        assert await request.is_disconnected()

    asyncio.run(scenario())
