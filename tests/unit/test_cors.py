"""Every answer of a function's app to a page is readable by it: preflights, answers the
app wrote, and the refusals and masked errors the middleware writes itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient

from gatewayz import cors
from gatewayz.http import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

PAGE = "https://app.example.com"
router = APIRouter()
ran: list[str] = []


@router.post("/v1/things")
async def make(request: Request) -> dict[str, str]:
    ran.append("make")
    request.state.response_headers["x-ratelimit-remaining-requests"] = "9"
    return {"made": "yes"}


@router.get("/v1/broken")
async def broken() -> None:
    raise RuntimeError("a bug")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app("test", [router], health=False), raise_server_exceptions=False) as c:
        yield c


def readable(response: httpx.Response) -> bool:
    return response.headers.get("access-control-allow-origin") == PAGE and response.headers.get(
        "access-control-expose-headers"
    ) == ", ".join(cors.EXPOSE_HEADERS)


def test_a_preflight_is_answered_before_any_route_runs(client: TestClient) -> None:
    ran.clear()
    for path in ("/v1/things", "/v1/no-such-path"):
        response = client.options(
            path,
            headers={
                "origin": PAGE,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
                # A preflight has no body; a stray length must not make it a 413 or 415.
                "content-length": str(10**9),
            },
        )
        assert response.status_code == 204, path
        assert readable(response)
        assert response.headers["access-control-allow-methods"] == ", ".join(cors.ALLOW_METHODS)
        assert response.headers["access-control-allow-headers"] == ", ".join(cors.ALLOW_HEADERS)
        assert response.headers["x-request-id"].startswith("req_")
    assert ran == []


def test_an_answer_keeps_the_routes_own_headers_beside_cors(client: TestClient) -> None:
    response = client.post("/v1/things", json={}, headers={"origin": PAGE})
    assert response.status_code == 200
    assert readable(response)
    assert response.headers["x-ratelimit-remaining-requests"] == "9"
    assert response.headers["vary"] == "Origin"


def test_refusals_and_masked_errors_are_readable(client: TestClient) -> None:
    wrong_type = client.post(
        "/v1/things", content=b"x", headers={"origin": PAGE, "content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert readable(wrong_type)
    failed = client.get("/v1/broken", headers={"origin": PAGE})
    assert failed.status_code == 500
    assert readable(failed)
    unknown = client.get("/v1/nowhere", headers={"origin": PAGE})
    assert unknown.status_code == 404
    assert readable(unknown)


def test_without_origin_nothing_is_added(client: TestClient) -> None:
    response = client.post("/v1/things", json={})
    assert not [name for name in response.headers if name.startswith("access-control-")]
    assert "vary" not in response.headers
