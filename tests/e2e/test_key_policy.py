"""Every key check of docs/architecture.md on the chat path, through the running gateway."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import openai
import pytest

from tests.e2e.conftest import MODEL, new_account
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from tests.e2e.conftest import Upstreams

HELLO = [{"role": "user", "content": "hi"}]


def ask(gateway: str, secret: str, **headers: str) -> object:
    client = openai.OpenAI(base_url=gateway, api_key=secret, max_retries=0, default_headers=headers)
    return client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]


def test_the_client_ip_must_be_in_the_keys_cidrs(gateway: str) -> None:
    # The gateway sees this test's requests from 127.0.0.1, whatever X-Forwarded-For says.
    elsewhere = new_account(allowed_cidrs=["10.0.0.0/8"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(gateway, elsewhere.secret, **{"x-forwarded-for": "10.1.2.3"})
    assert caught.value.code == "ip_not_allowed"
    here = new_account(allowed_cidrs=["127.0.0.0/8", "::1/128"])
    ask(gateway, here.secret)


def test_a_browser_key_needs_an_allowed_origin(gateway: str) -> None:
    browser = new_account(allowed_referers=["app.example.com"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(gateway, browser.secret)
    assert caught.value.code == "referer_not_allowed"
    with pytest.raises(openai.PermissionDeniedError):
        ask(gateway, browser.secret, origin="https://evil.example.net")
    ask(gateway, browser.secret, origin="https://app.example.com")


def test_a_model_outside_the_keys_allowlist_is_forbidden(gateway: str) -> None:
    narrow = new_account(allowed_models=["openai/*"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(gateway, narrow.secret)
    assert caught.value.code == "model_not_allowed"


def test_a_fallback_model_outside_the_keys_allowlist_is_never_tried(
    gateway: str, upstreams: Upstreams
) -> None:
    narrow = new_account(allowed_models=["test/*"])
    # Both offers of the allowed model fail: the forbidden fallback must not be next.
    upstreams.primary.enqueue(Behaviour(status=500))
    upstreams.secondary.enqueue(Behaviour(status=500))
    client = openai.OpenAI(base_url=gateway, api_key=narrow.secret, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=HELLO,  # type: ignore[arg-type]
            extra_body={"models": ["openai/gpt-4o-mini"]},
        )
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_error")
    sent = [r.json["model"] for r in upstreams.primary.requests + upstreams.secondary.requests]
    assert sent == ["openrouter/echo", "featherless/echo"]


def test_expired_and_revoked_keys_are_refused(gateway: str) -> None:
    expired = new_account(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(gateway, expired.secret)
    assert caught.value.code == "expired_api_key"
    revoked = new_account(revoked_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(gateway, revoked.secret)
    assert caught.value.code == "revoked_api_key"


def test_a_spending_limit_is_a_402_from_the_key(gateway: str) -> None:
    capped = new_account(spend_limit_nanos=1)
    with pytest.raises(openai.APIStatusError) as caught:
        ask(gateway, capped.secret)
    assert caught.value.status_code == 402
    assert caught.value.body["metadata"] == {"limit_source": "key_limit"}  # type: ignore[index]


def test_requests_in_flight_are_limited(gateway: str, upstreams: Upstreams) -> None:
    one_at_a_time = new_account(limits_set_by_admin=True, concurrent_requests=1)
    at_provider, release = threading.Event(), threading.Event()
    upstreams.primary.enqueue(Behaviour(received=at_provider, release=release))
    first: list[object] = []
    slow = threading.Thread(target=lambda: first.append(ask(gateway, one_at_a_time.secret)))
    slow.start()
    try:
        assert at_provider.wait(30)  # the first request holds credits, and waits at the provider
        with pytest.raises(openai.RateLimitError) as caught:
            ask(gateway, one_at_a_time.secret)
    finally:
        release.set()
        slow.join()
    assert caught.value.body["metadata"] == {"limit": "concurrent_requests"}  # type: ignore[index]
    assert len(first) == 1  # the first one was served
    assert len(upstreams.primary.requests) == 1  # the second never reached a provider
    ask(gateway, one_at_a_time.secret)  # and its slot is free again
