"""`gatewayz dev`: one local server routing like API Gateway to the real handlers."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest

from gatewayz import db
from gatewayz.dev import bootstrap, local, samtemplate
from tests.conftest import reset_caches
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture(scope="module")
def gateway() -> local.LocalGateway:
    template = samtemplate.load(ROOT / "template.yaml")
    return local.LocalGateway(template, local.load_functions(ROOT, template))


@pytest.fixture
async def client(gateway: local.LocalGateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway, client=("198.51.100.4", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.local") as c:
        yield c


async def test_health_goes_to_the_streaming_chat_app(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    # A real Redis, so its "ok" means it answered (the in-process store always would).
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_caches()
    try:
        response = await client.get("/health")
    finally:
        monkeypatch.undo()
        reset_caches()
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}
    assert response.headers["x-request-id"].startswith("req_")


async def test_a_buffered_route_reaches_its_function_through_an_api_gateway_event(
    client: httpx.AsyncClient,
) -> None:
    # Without a key the keys function's own app answers 401, with the request id its
    # middleware adds (the local gateway authenticates nothing).
    response = await client.get("/v1/keys?limit=5")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["x-request-id"].startswith("req_")


async def test_a_path_no_function_owns_is_a_404_like_every_other_answer(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-should-retry"] == "false"


async def test_a_wrong_method_on_a_known_path_is_the_functions_405_naming_those_it_takes(
    client: httpx.AsyncClient,
) -> None:
    # template.yaml hands every method of /v1/plans to the billing function; its app
    # answers, as it would behind API Gateway.
    response = await client.delete("/v1/plans")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, OPTIONS"  # OPTIONS: browsers' preflights
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-should-retry"] == "false"
    # A path with parameters, in the streamed chat function.
    response = await client.post("/v1/models/openai/gpt-4o")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, OPTIONS"
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_a_wrong_method_inside_a_functions_own_routes_is_its_405(
    client: httpx.AsyncClient,
) -> None:
    # API Gateway hands the keys function every method under /v1/keys/; its app answers.
    response = await client.put("/v1/keys/key_123")
    assert response.status_code == 405
    assert "DELETE" in response.headers["allow"].split(", ")
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-should-retry"] == "false"


async def test_a_body_over_the_api_gateway_limit_is_a_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/keys",
        content=b"x" * (local.API_GATEWAY_MAX_BODY + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_the_whole_apis_openapi_document_is_served_and_is_docs_openapi_json(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads((ROOT / "docs" / "openapi.json").read_text())


async def test_each_documented_operation_exists_and_wants_the_key_it_documents(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    checked = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            # Model ids hold a slash (a path converter); other ids are single segments.
            url = re.sub(
                r"\{([^}]+)\}",
                lambda m: "mock/echo" if m[1] == "model_id" else str(uuid.UUID(int=0)),
                path,
            )
            query = {p["name"]: "x" for p in operation.get("parameters", []) if p["in"] == "query"}
            body = {} if "requestBody" in operation else None
            response = await client.request(method, url, params=query, json=body)
            # Whatever it answers, it is the route's answer, not an unknown path.
            error = response.json().get("error") or {}
            assert not str(error.get("message", "")).startswith("Unknown path"), (method, path)
            if operation.get("security") == []:
                assert response.status_code != 401, (method, path, response.text)
            else:
                assert response.status_code == 401, (method, path, response.text)
                assert error["code"] == "invalid_api_key"
            checked += 1
    assert checked >= 6


def test_the_event_is_what_api_gateway_sends() -> None:
    event = local.rest_event(
        method="POST",
        path="/v1/keys/abc/rotate",
        resource="/v1/keys/{proxy+}",
        headers=[("content-type", "application/json"), ("x-multi", "1"), ("x-multi", "2")],
        query="a=1&a=2&b=",
        body=b'{"x": 1}',
        source_ip="203.0.113.9",
        path_parameters={"proxy": "abc/rotate"},
    )
    assert event["headers"]["x-multi"] == "2"
    assert event["multiValueHeaders"]["x-multi"] == ["1", "2"]
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["requestContext"]["identity"]["sourceIp"] == "203.0.113.9"
    assert event["requestContext"]["resourcePath"] == "/v1/keys/{proxy+}"
    assert event["body"] == '{"x": 1}'
    assert event["isBase64Encoded"] is False
    binary = local.rest_event(method="POST", path="/", resource="/", headers=[], body=b"\xff\x00")
    assert binary["isBase64Encoded"] is True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# No provider key: the offline mock serves. One key (of a provider never reached here):
# the mock stays beside it (GATEWAYZ_MOCK defaults to on under `gatewayz dev`).
@pytest.mark.parametrize("provider_key", [None, "sk-or-unused"])
def test_gatewayz_dev_serves_health_and_prints_the_two_keys_and_a_working_sdk_snippet(
    empty_database: str, tmp_path: Path, provider_key: str | None
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": empty_database,
        "GATEWAYZ_HOME": str(tmp_path),
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    if provider_key is not None:
        env["OPENROUTER_API_KEY"] = provider_key
        env["OPENROUTER_BASE_URL"] = "http://openrouter.invalid/api/v1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewayz.dev.cli", "dev"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert status == 200
        saved = json.loads((tmp_path / "dev-keys.json").read_text())
        with db.connect(empty_database) as conn:
            before = demo_balance(conn)
        printed, snippet = _printed_snippet(proc)
        ran = subprocess.run(
            ["bash", "-c", snippet.replace(".venv/bin/python", sys.executable, 1)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        with db.connect(empty_database) as conn:
            after = demo_balance(conn)
    finally:
        proc.terminate()
        output = printed + proc.communicate(timeout=30)[0]
    assert re.fullmatch(r"gw_live_\w{32}", saved["admin_key"])
    assert 'model="mock/echo"' in snippet
    assert "providers: " + ("openrouter, " if provider_key else "") + "mock (offline" in output
    assert f"admin key: {saved['admin_key']}" in output
    assert f"demo key:  {saved['demo_key']}" in output
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("Hello from the OpenAI SDK (cost $")
    assert lines[1].startswith("Hello from the OpenAI SDK (streamed; cost $")
    costs = [Decimal(re.search(r"cost \$([0-9.]+)", line)[1]) for line in lines]  # type: ignore[index]
    # The demo account paid exactly what the answers said they cost.
    assert before - after == sum(int(c * 10**9) for c in costs)


def demo_balance(conn: object) -> int:
    row = conn.execute(  # type: ignore[attr-defined]
        """SELECT a.balance_nanos FROM accounts a JOIN memberships m ON m.account_id = a.id
             JOIN users u ON u.id = m.user_id WHERE u.email = %s""",
        (bootstrap.DEMO_EMAIL,),
    ).fetchone()
    return int(row[0])


def _printed_snippet(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Read the dev server's output up to the end of the printed SDK snippet: (all of it
    so far, the snippet)."""
    assert proc.stdout is not None
    printed: list[str] = []
    snippet: list[str] = []
    for line in proc.stdout:
        printed.append(line)
        if snippet or line.startswith(".venv/bin/python - <<'PY'"):
            snippet.append(line)
            if line.strip() == "PY":
                return "".join(printed), "".join(snippet)
    raise AssertionError("no snippet printed")
