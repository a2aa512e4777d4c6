"""Browsers through `gatewayz dev` (routing as template.yaml does): preflights on every
`/v1` path, and CORS headers on every answer to a page, errors included."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from gatewayz import cors
from gatewayz.dev import local, samtemplate
from tests.factories import new_key, new_owner
from tests.ledger import broken_accounts
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")

PAGE = "http://localhost:5173"
TEMPLATE = samtemplate.load(ROOT / "template.yaml")
V1_PATHS = sorted({r.path for r in TEMPLATE.routes if r.path.startswith("/v1")})
HELLO = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def gateway() -> local.LocalGateway:
    return local.LocalGateway(TEMPLATE, local.load_functions(ROOT, TEMPLATE))


@pytest.fixture
async def client(gateway: local.LocalGateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway, client=("198.51.100.4", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.local") as c:
        yield c


@pytest.fixture(autouse=True)
def _ledger(conn: psycopg.Connection) -> Iterator[None]:
    yield
    assert broken_accounts(conn) == []


def assert_readable_by_the_page(response: httpx.Response) -> None:
    assert response.headers["access-control-allow-origin"] == PAGE
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "x-ratelimit-remaining-requests", "retry-after"} <= exposed
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("path", V1_PATHS)
async def test_every_v1_path_answers_a_preflight(client: httpx.AsyncClient, path: str) -> None:
    response = await client.options(
        path.replace("{proxy+}", "openai/gpt-4o-mini"),
        headers={
            "origin": PAGE,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,x-stainless-os",
        },
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_readable_by_the_page(response)
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].split(", ")
    assert {"authorization", "content-type", "x-stainless-os"} <= set(allowed)
    assert int(response.headers["access-control-max-age"]) == cors.MAX_AGE_S
    # Answered by the function's app, which tags every answer.
    assert response.headers["x-request-id"].startswith("req_")


async def test_an_answer_without_origin_carries_no_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]


async def test_a_streamed_completion_is_readable_by_the_page(client: httpx.AsyncClient) -> None:
    key = new_key(new_owner(plan_id="trial"))
    response = await client.post(
        "/v1/chat/completions",
        json={**HELLO, "stream": True},
        headers={"origin": PAGE, "authorization": f"Bearer {key.secret}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert_readable_by_the_page(response)
    assert response.text.rstrip().endswith("data: [DONE]")


async def test_a_buffered_functions_answer_through_mangum_is_readable(
    client: httpx.AsyncClient,
) -> None:
    key = new_key(new_owner(plan_id="trial"))
    response = await client.get(
        "/v1/credits", headers={"origin": PAGE, "authorization": f"Bearer {key.secret}"}
    )
    assert response.status_code == 200, response.text
    assert_readable_by_the_page(response)


async def test_a_missing_key_is_a_401_the_page_can_read(client: httpx.AsyncClient) -> None:
    for path in ("/v1/chat/completions", "/v1/keys"):
        response = await client.post(path, json=HELLO, headers={"origin": PAGE})
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert_readable_by_the_page(response)


async def test_a_key_for_another_site_is_still_refused_with_a_readable_403(
    client: httpx.AsyncClient,
) -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner, allowed_referers=["app.example.com"])
    response = await client.post(
        "/v1/chat/completions",
        json=HELLO,
        headers={"origin": PAGE, "authorization": f"Bearer {key.secret}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "referer_not_allowed"
    assert_readable_by_the_page(response)
    # Its own site is served.
    allowed = await client.post(
        "/v1/chat/completions",
        json=HELLO,
        headers={"origin": "https://app.example.com", "authorization": f"Bearer {key.secret}"},
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"


async def test_a_rate_limited_request_is_a_429_the_page_can_read(
    client: httpx.AsyncClient,
) -> None:
    key = new_key(new_owner(plan_id="trial"), requests_per_minute=1)
    headers = {"origin": PAGE, "authorization": f"Bearer {key.secret}"}
    first = await client.post("/v1/chat/completions", json=HELLO, headers=headers)
    assert first.status_code == 200
    second = await client.post("/v1/chat/completions", json=HELLO, headers=headers)
    assert second.status_code == 429
    assert_readable_by_the_page(second)
    assert int(second.headers["retry-after"]) >= 1


async def test_the_gateways_own_404_is_readable_like_api_gateways(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/v2/nothing", headers={"origin": PAGE, "access-control-request-method": "GET"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert_readable_by_the_page(response)
