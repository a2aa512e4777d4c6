"""A function answers `/openapi.json` outside Lambda only: deployed, it is an unknown path,
through the Mangum handler of a buffered function and the ASGI app of the streaming one."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from gatewayz.dev.local import LambdaContext, import_app
from tests.functions.events import event, json_body
from tests.pg import ROOT

if TYPE_CHECKING:
    from types import ModuleType


def fresh(group: str) -> ModuleType:
    """functions/<group>/app.py imported anew, so its app is built in this environment."""
    return import_app(ROOT / "functions" / group / "app.py", f"openapi_{group}_{uuid.uuid4().hex}")


def get_openapi(module: ModuleType) -> dict[str, Any]:
    lambda_event = event("keys", path="/openapi.json", httpMethod="GET")
    result: dict[str, Any] = module.handler(lambda_event, LambdaContext())
    return result


@pytest.fixture(params=[True, False], ids=["in_lambda", "outside_lambda"])
def in_lambda(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether the apps of this test are built as Lambda builds them."""
    if request.param:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-test")
    else:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    return bool(request.param)


def test_the_keys_handler_serves_its_document_only_outside_lambda(in_lambda: bool) -> None:
    result = get_openapi(fresh("keys"))
    if in_lambda:
        assert result["statusCode"] == 404
        assert json_body(result)["error"]["message"] == "Unknown path: GET /openapi.json."
    else:
        assert result["statusCode"] == 200
        assert json_body(result)["info"]["title"] == "gatewayz-keys"


async def test_the_streaming_chat_app_serves_its_document_only_outside_lambda(
    in_lambda: bool,
) -> None:
    transport = httpx.ASGITransport(app=fresh("chat").app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.local") as client:
        response = await client.get("/openapi.json")
    if in_lambda:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    else:
        assert response.status_code == 200
        paths = response.json()["paths"]
        body = paths["/v1/chat/completions"]["post"]["requestBody"]["content"]
        assert body["application/json"]["schema"]["$ref"].endswith("/ChatCompletionRequest")
