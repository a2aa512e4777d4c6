"""template.yaml lets browsers in: every `/v1` path answers its preflight from the function
serving it, and API Gateway's own answers carry the CORS headers the functions send."""

from __future__ import annotations

import pytest

from gatewayz import cors
from gatewayz.dev import gateway_responses, samtemplate
from tests.pg import ROOT

ORIGIN = "https://app.example.com"
# The answers API Gateway gives without a function (template.yaml, GatewayResponses).
KINDS = ["MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "INTEGRATION_TIMEOUT", "DEFAULT_4XX",
         "DEFAULT_5XX"]  # fmt: skip


@pytest.fixture(scope="module")
def template() -> samtemplate.Template:
    return samtemplate.load(ROOT / "template.yaml")


def test_every_v1_path_sends_its_preflight_to_the_function_serving_it(
    template: samtemplate.Template,
) -> None:
    paths = {route.path for route in template.routes if route.path.startswith("/v1")}
    assert len(paths) > 20
    for path in paths:
        sample = path.replace("{proxy+}", "a/b")
        served = {route.group for route in template.routes if route.path == path}
        preflight = samtemplate.match(template.routes, "OPTIONS", sample)
        assert preflight is not None, f"OPTIONS {path} is not routed"
        assert {preflight[0].group} == served, path
        # A streamed function gets its preflight in the format it writes.
        assert preflight[0].streaming == template.functions[preflight[0].group].streaming


@pytest.mark.parametrize("kind", KINDS)
def test_api_gateways_own_answers_carry_the_functions_cors_headers(
    template: samtemplate.Template, kind: str
) -> None:
    mappings = gateway_responses.mappings(template, kind)
    request = [(b"origin", ORIGIN.encode()), (b"authorization", b"Bearer x")]
    resolved = gateway_responses.headers_for(mappings, request)
    # Besides CORS, a 404 for no route says a retry cannot change it.
    resolved.pop("x-should-retry", None)
    assert resolved == cors.response_headers(ORIGIN)
    # A request without Origin (a server, curl) gets no Allow-Origin.
    assert "access-control-allow-origin" not in gateway_responses.headers_for(mappings, [])


def test_the_preflight_names_every_header_openai_node_sends() -> None:
    # openai@5's own request headers (client.mjs buildHeaders, detect-platform.mjs).
    sent = {"authorization", "content-type", "accept", "user-agent", "idempotency-key",
            "openai-organization", "openai-project", "x-stainless-retry-count",
            "x-stainless-timeout", "x-stainless-lang", "x-stainless-package-version",
            "x-stainless-os", "x-stainless-arch", "x-stainless-runtime",
            "x-stainless-runtime-version", "x-stainless-helper-method"}  # fmt: skip
    listed = cors.preflight_headers()["access-control-allow-headers"]
    allowed = {name.strip() for name in listed.split(",")}
    assert sent <= allowed
    assert all("*" not in name for name in allowed)


def test_every_path_hands_every_method_to_its_function(template: samtemplate.Template) -> None:
    # API Gateway answers a method a resource lacks with a 403 "Missing Authentication
    # Token" (our 404); routed as ANY, the function's app answers it with a 405 naming
    # the methods it takes in `Allow`, as OpenAI does.
    explicit = sorted(f"{r.method} {r.path}" for r in template.routes if r.method != "ANY")
    assert explicit == []
    # One event per path: an explicit method beside ANY would shadow the app's answer.
    paths = [(route.group, route.path) for route in template.routes]
    assert len(paths) == len(set(paths)) > 40
