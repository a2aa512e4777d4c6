"""The OpenAPI documents: docs/openapi.json is what the functions describe today, and what
it says about bodies and errors is what the gateway does."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from gatewayz import errors
from gatewayz.chat import request
from gatewayz.dev import local, openapi, samtemplate
from tests.pg import ROOT

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    template = samtemplate.load(ROOT / "template.yaml")
    return local.LocalGateway(template, local.load_functions(ROOT, template)).openapi_document()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def validator(doc: dict[str, Any], component: str) -> jsonschema.Draft202012Validator:
    """A validator of one component schema, its references resolved within `doc`."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_docs_openapi_json_is_current(document: dict[str, Any]) -> None:
    written = (ROOT / openapi.DOCUMENT).read_text()
    assert written == openapi.dumps(document), (
        "docs/openapi.json is out of date: run `.venv/bin/gatewayz openapi` and commit it"
    )


def test_every_error_response_is_the_openai_envelope(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        for status in ("4XX", "5XX"):
            assert responses[status] == {"$ref": "#/components/responses/Error"}, (method, path)
    envelope = validator(document, "Error")
    refusal = errors.InsufficientCredits("Not enough credits.", metadata={"limit_source": "x"})
    envelope.validate(refusal.body())
    envelope.validate(errors.InvalidRequest("Bad.", param="messages[0].content").body())
    with pytest.raises(jsonschema.ValidationError):
        envelope.validate({"status": "failure"})


def test_public_routes_need_no_key_and_the_rest_a_bearer_key(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    public = {path for _, path, op in operations(document) if op.get("security") == []}
    # The Stripe webhook is signed by Stripe instead of carrying a key.
    assert public == {"/health", "/v1/models", "/v1/models/{model_id}", "/webhooks/stripe"}


@pytest.mark.parametrize(
    ("component", "body"),
    [
        ("ChatCompletionRequest", {"model": "mock/echo", "messages": [{"role": "user",
                                    "content": "Hi"}], "max_tokens": 5, "stream": True}),
        ("ChatCompletionRequest", {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Hi"}]}], "tools": [{"type": "function"}], "seed": 1}),
        ("ChatCompletionRequest", {"model": "m", "messages": [{"role": "robot"}]}),
        ("ChatCompletionRequest", {"model": "m", "messages": [{"role": "user"}],
                                   "max_tokens": "5"}),
        ("ChatCompletionRequest", {"model": "m", "messages": [], "stream": 1}),
        ("ChatCompletionRequest", {"model": "m", "messages": [{"role": "user"}], "n": 17}),
        ("CompletionRequest", {"model": "m", "prompt": ["a", "b"], "best_of": 2}),
        ("CompletionRequest", {"model": "m", "prompt": [[1, 2], [3]], "logprobs": 6}),
        ("CompletionRequest", {"model": "m"}),
    ],
)  # fmt: skip
def test_a_documented_body_is_one_the_gateway_accepts(
    document: dict[str, Any], component: str, body: dict[str, Any]
) -> None:
    # The gateway's own parser decides; the document must agree with it both ways.
    try:
        request.parse(body, chat=component == "ChatCompletionRequest")
        accepted = True
    except errors.InvalidRequest:
        accepted = False
    assert validator(document, component).is_valid(body) == accepted
