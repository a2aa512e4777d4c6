"""API Gateway's own answers, as template.yaml configures them (`GatewayResponses`).

API Gateway answers some requests without a function: a path or method nothing serves
(`MISSING_AUTHENTICATION_TOKEN`), throttling, timeouts. The template gives those answers
headers (CORS among them, so a browser can read them); the local gateway answers its own
errors with the same headers, resolved from the request as API Gateway resolves them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz.dev import samtemplate

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["headers_for", "mappings"]

_REQUEST_HEADER = "method.request.header."


def mappings(template: samtemplate.Template, kind: str) -> dict[str, str]:
    """The header mappings of the gateway response `kind` (e.g. `DEFAULT_4XX`), from
    `GatewayResponses.<kind>.ResponseParameters.Headers` of the serverless API."""
    for resource in _mapping(template.raw.get("Resources")).values():
        if not isinstance(resource, dict) or resource.get("Type") != samtemplate.API_TYPE:
            continue
        responses = _mapping(_mapping(resource.get("Properties")).get("GatewayResponses"))
        parameters = _mapping(_mapping(responses.get(kind)).get("ResponseParameters"))
        headers = _mapping(parameters.get("Headers"))
        if headers:
            return {str(name): str(value) for name, value in headers.items()}
    return {}


def headers_for(
    mappings: dict[str, str], request_headers: Sequence[tuple[bytes, bytes]]
) -> dict[str, str]:
    """The headers `mappings` give for a request: a `'literal'`, or
    `method.request.header.<Name>` (left out when the request has no such header)."""
    received = {name.lower(): value for name, value in request_headers}
    resolved: dict[str, str] = {}
    for name, source in mappings.items():
        if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
            resolved[name.lower()] = source[1:-1]
        elif source.lower().startswith(_REQUEST_HEADER):
            value = received.get(source[len(_REQUEST_HEADER) :].lower().encode("latin-1"))
            if value:
                resolved[name.lower()] = value.decode("latin-1")
    return resolved


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}
