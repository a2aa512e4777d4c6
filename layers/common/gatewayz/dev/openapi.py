"""The whole API's OpenAPI document: every function's routes under one `paths`.

Each function's app describes its own routes (gatewayz/openapi.py); this keeps the
operations template.yaml routes to that function (so `GET /health`, which every app
answers, is documented once, from the function API Gateway sends it to), and adds the
API's servers. `gatewayz openapi` writes the result to docs/openapi.json; `gatewayz
dev` serves it at `/openapi.json`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from gatewayz import __version__, openapi
from gatewayz.dev import samtemplate

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from starlette.types import ASGIApp

DOCUMENT = "docs/openapi.json"
PATH = openapi.PATH  # where `gatewayz dev` serves it
DESCRIPTION = (
    "An OpenAI-compatible AI gateway: point an OpenAI SDK at `<server>/v1` with a Gatewayz "
    "API key. docs/api.md describes every route, its rules and its errors."
)
SERVERS = [
    {
        "url": "https://{api}.execute-api.{region}.amazonaws.com/{stage}",
        "description": "A deploy (the stack's `ApiUrl` output)",
        "variables": {
            "api": {"default": "abcdef1234", "description": "the REST API's id"},
            "region": {"default": "us-east-1"},
            "stage": {"default": "prod", "description": "the `Stage` parameter"},
        },
    },
    {"url": "http://127.0.0.1:8000", "description": "`gatewayz dev` (`make dev`)"},
]
_PARAMETER = re.compile(r"\{[^}]+\}")


class OpenAPIConflict(ValueError):
    """Two functions describe the same schema differently."""


def document(routes: Sequence[samtemplate.Route], apps: Mapping[str, ASGIApp]) -> dict[str, Any]:
    """The merged document of `apps` (by group), keeping what `routes` send to each.

    Raises:
        OpenAPIConflict: two functions define one component schema differently.
    """
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for group in sorted(apps):
        app = apps[group]
        if not isinstance(app, FastAPI):
            continue
        own = openapi.document(app)
        for path, item in own.get("paths", {}).items():
            for method, operation in item.items():
                if _routed_to(routes, method, path) == group:
                    paths.setdefault(path, {})[method] = operation
        for name, schema in own.get("components", {}).get("schemas", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise OpenAPIConflict(f"schema {name} differs between functions ({group})")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gatewayz", "version": __version__, "description": DESCRIPTION},
        "servers": SERVERS,
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {"Error": openapi.ERROR_RESPONSE},
            "securitySchemes": openapi.BEARER,
        },
    }


def dumps(doc: dict[str, Any]) -> str:
    """The text of docs/openapi.json (stable, so a diff shows what changed)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _routed_to(routes: Sequence[samtemplate.Route], method: str, path: str) -> str | None:
    """The group API Gateway sends `method path` to, with each parameter filled in."""
    sample = _PARAMETER.sub("x", path)
    matched = samtemplate.match(routes, method.upper(), sample)
    return matched[0].group if matched else None
