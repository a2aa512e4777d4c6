"""A function's OpenAPI document, as its clients see it (docs/api.md is the prose).

FastAPI describes the routes; this module adds what it cannot know: the bearer key most
routes need, the OpenAI error envelope every 4xx and 5xx carries (a validation problem
is a 400 here, not FastAPI's 422), and the request bodies of routes that read their body
by hand (chat completions), described by the pydantic model that validates them.

Documents are built on first use, never at import. A function serves its own at
`/openapi.json` only outside Lambda (`gatewayz dev`, a test, `uvicorn app:app`):
deployed, API Gateway routes no such path and the app does not answer it either. Cold
start pays nothing measurable for this (FastAPI imports its OpenAPI code anyway; this
module takes 0.2 ms); building the chat function's document takes about 20 ms, once.
`gatewayz openapi` merges every function's document into docs/openapi.json.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from gatewayz import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI

PATH = "/openapi.json"
SCHEMAS = "#/components/schemas/"
BEARER = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A Gatewayz API key: `Authorization: Bearer gw_live_...`.",
    }
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "OpenAI's error envelope; the OpenAI SDKs raise the class matching the status.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "examples": ["invalid_request_error"]},
                "param": {
                    "type": ["string", "null"],
                    "description": "The request field at fault (`messages[0].content`).",
                },
                "code": {"type": "string", "examples": ["insufficient_credits"]},
                "metadata": {
                    "type": "object",
                    "description": "More detail for some codes (`limit_source` on a 402).",
                },
            },
        }
    },
}
ERROR_RESPONSE = {
    "description": "An error in OpenAI's envelope (docs/api.md lists the codes).",
    "headers": {"x-request-id": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Error"}}},
}
ERROR_REF = {"$ref": "#/components/responses/Error"}
# FastAPI's 422 and its schemas: this gateway answers a validation problem with a 400.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
# Request bodies named by `body()`, resolved to their models' JSON schema when a document
# is built: component name -> "module:Model".
_BODIES: dict[str, str] = {}


def served() -> bool:
    """Whether apps answer `/openapi.json`: everywhere but in Lambda (the test of
    `config.in_lambda`, without loading the settings module at cold start)."""
    return "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def body(name: str, model: str, description: str, *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route that parses its JSON body itself: the body is described
    by the pydantic model at `model` ("module:Class"), imported only when a document is
    built, as the component `name`."""
    _BODIES[name] = model
    schema = {"$ref": SCHEMAS + name}
    return {
        "requestBody": {
            "required": required,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def parameter(name: str, where: str, description: str, *, required: bool = False) -> dict[str, Any]:
    """One string parameter (`where`: "query" or "path") of a route that reads it from the
    `Request` itself: FastAPI imports pydantic.v1 (~35 ms of a cold start) to build any
    route with a parameter of its own, so every route that can goes without."""
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": {"type": "string"},
    }


def parameters(*described: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route's parameters, each from `parameter()`."""
    return {"parameters": list(described)}


# A paginated list's two parameters (gatewayz.pagination).
LIMIT = parameter("limit", "query", "how many to a page")
CURSOR = parameter("cursor", "query", "the page after this one: `next_cursor`")


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        doc = get_openapi(
            title=app.title,
            version=__version__,
            description=app.description or None,
            routes=app.routes,
        )
        app.openapi_schema = shape(doc)
    return app.openapi_schema


def shape(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the bearer scheme, the error envelope and the hand-parsed bodies to `doc`."""
    components = doc.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    components["responses"] = {"Error": ERROR_RESPONSE}
    components["securitySchemes"] = BEARER
    doc["security"] = [{"bearer": []}]
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses.update({"4XX": ERROR_REF, "5XX": ERROR_REF})
            schemas.update(_bodies(operation))
    return doc


def _bodies(operation: dict[str, Any]) -> dict[str, Any]:
    """The JSON schemas of the request body this operation names with `body()`."""
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    name = ref.removeprefix(SCHEMAS)
    if name not in _BODIES:
        return {}
    module, _, attribute = _BODIES[name].partition(":")
    model = getattr(importlib.import_module(module), attribute)
    schema: dict[str, Any] = model.model_json_schema(ref_template=SCHEMAS + "{model}")
    found = schema.pop("$defs", {})
    schema["title"] = name
    return {**found, name: schema}
