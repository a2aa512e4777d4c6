"""The error envelope, as the OpenAI SDK parses it."""

from __future__ import annotations

import inspect

import pytest

from gatewayz import errors

ALL = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.GatewayError) and cls is not errors.MissingConfiguration
]


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_every_error_renders_the_openai_envelope(cls: type[errors.GatewayError]) -> None:
    body = cls("something is wrong", param="model").body()
    assert set(body) == {"error"}
    assert body["error"]["message"] == "something is wrong"
    assert body["error"]["param"] == "model"
    assert isinstance(body["error"]["code"], str)
    assert body["error"]["code"]
    assert isinstance(body["error"]["type"], str)
    assert body["error"]["type"]
    assert 400 <= cls.status <= 599


def test_codes_and_statuses_match_the_design() -> None:
    expected = {
        errors.InvalidApiKey: (401, "invalid_api_key"),
        errors.ExpiredApiKey: (401, "expired_api_key"),
        errors.RevokedApiKey: (401, "revoked_api_key"),
        errors.InsufficientCredits: (402, "insufficient_credits"),
        errors.ScopeDenied: (403, "scope_denied"),
        errors.IpNotAllowed: (403, "ip_not_allowed"),
        errors.RefererNotAllowed: (403, "referer_not_allowed"),
        errors.ModelNotAllowed: (403, "model_not_allowed"),
        errors.ModelNotFound: (404, "model_not_found"),
        errors.Conflict: (409, "idempotency_conflict"),
        errors.RequestTooLarge: (413, "request_too_large"),
        errors.RateLimited: (429, "rate_limit_exceeded"),
        errors.UpstreamError: (502, "upstream_error"),
        errors.NoProviderAvailable: (503, "no_provider_available"),
        errors.UpstreamTimeout: (504, "upstream_timeout"),
        errors.InternalError: (500, "internal_error"),
    }
    assert {cls: (cls.status, cls.code) for cls in expected} == expected


def test_metadata_appears_only_when_given() -> None:
    plain = errors.InsufficientCredits("no money").body()["error"]
    assert "metadata" not in plain
    rich = errors.InsufficientCredits("no money", metadata={"limit_source": "credits"})
    assert rich.body()["error"]["metadata"] == {"limit_source": "credits"}


def test_errors_that_cannot_succeed_on_retry_say_so() -> None:
    assert errors.InsufficientCredits("x").response_headers() == {"x-should-retry": "false"}
    assert errors.MissingConfiguration("X").response_headers()["x-should-retry"] == "false"
    limited = errors.RateLimited("slow down", headers={"retry-after": "3"})
    assert limited.response_headers() == {"retry-after": "3"}


FINAL_STATUSES = {400, 401, 402, 403, 404, 405, 409, 413, 415}


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_what_a_retry_cannot_change_says_so_and_nothing_else_does(
    cls: type[errors.GatewayError],
) -> None:
    # The SDKs retry 408, 409, 429 and 5xx unless told not to; they never retry other 4xx.
    # A 409 for an idempotent twin still running is meant to be retried.
    retried = cls is errors.IdempotencyInProgress
    final = (cls.status in FINAL_STATUSES and not retried) or cls in (
        errors.NoProviderAvailable,
        errors.UpstreamRefused,
    )
    headers = cls("no").response_headers()
    assert headers.get("x-should-retry") == ("false" if final else None)


def test_client_input_is_quoted_briefly() -> None:
    assert errors.quote("short") == "short"
    assert errors.quote("m" * 1_000_000) == "m" * 100 + "..."
    assert errors.quote("x" * 101, 10) == "x" * 10 + "..."
