"""Access policy (DESIGN §3 step 2, §8): pure checks, each naming its reason."""

from __future__ import annotations

import dataclasses

import pytest

from gatewayz import errors, policy
from gatewayz.auth import Caller, Limits

BASE = Caller(
    key_id="k", account_id="a", user_id="u", scopes=frozenset({"chat"}), allowed_models=None,
    allowed_cidrs=None, allowed_referers=None, limits=Limits(10, 100, 1000, 2),
    spend_limit_nanos=None, expires_at=None, revoked_at=None, secret_expires_at=None,
    account_status="active", plan_id="payg",
)  # fmt: skip


def caller(**changes: object) -> Caller:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


def test_scopes() -> None:
    policy.require_scope(BASE, "chat")
    with pytest.raises(errors.ScopeDenied, match="images"):
        policy.require_scope(BASE, "images")
    policy.require_scope(caller(scopes=frozenset({"admin"})), "images")


def test_models_by_id_and_family() -> None:
    limited = caller(allowed_models=("openai/*", "meta-llama/llama-3.1-8b-instruct"))
    policy.require_model(limited, "openai/gpt-4o")
    policy.require_model(limited, "meta-llama/llama-3.1-8b-instruct")
    with pytest.raises(errors.ModelNotAllowed) as caught:
        policy.require_model(limited, "meta-llama/llama-3.3-70b-instruct")
    assert caught.value.param == "model"
    with pytest.raises(errors.ModelNotAllowed):
        policy.require_model(limited, "openaix/gpt")
    policy.require_model(BASE, "anything/at-all")


@pytest.mark.parametrize(
    ("ip", "ok"),
    [("10.1.2.3", True), ("10.2.0.1", False), ("2001:db8::1", True), ("2001:db9::1", False),
     (None, False), ("not-an-ip", False)],
)  # fmt: skip
def test_client_ip_within_the_cidrs(ip: str | None, ok: bool) -> None:
    limited = caller(allowed_cidrs=("10.1.0.0/16", "2001:db8::/32"))
    if ok:
        policy.require_ip(limited, ip)
    else:
        with pytest.raises(errors.IpNotAllowed):
            policy.require_ip(limited, ip)
    policy.require_ip(BASE, ip)


@pytest.mark.parametrize(
    ("referer", "origin", "ok"),
    [
        ("https://app.example.com/page", None, True),
        (None, "https://x.shop.example.org", True),
        (None, "https://shop.example.org", False),
        ("https://evil.com/?app.example.com", None, False),
        ("https://app.example.com.evil.com/", None, False),
        (None, None, False),
        ("https://evil.com", "https://app.example.com", True),  # Origin wins over Referer
    ],
)
def test_referer_and_origin(referer: str | None, origin: str | None, ok: bool) -> None:
    limited = caller(allowed_referers=("app.example.com", "*.shop.example.org"))
    if ok:
        policy.require_origin(limited, referer, origin)
    else:
        with pytest.raises(errors.RefererNotAllowed):
            policy.require_origin(limited, referer, origin)


def test_origin_entries_match_whatever_their_case() -> None:
    # Hosts in URLs arrive lower-cased (`urlsplit`); an entry typed with capitals still counts.
    limited = caller(allowed_referers=("App.Example.com", "*.Shop.Example.ORG"))
    policy.require_origin(limited, None, "https://app.example.com")
    policy.require_origin(limited, None, "https://APP.EXAMPLE.COM")
    policy.require_origin(limited, "https://x.shop.example.org/cart", None)
    with pytest.raises(errors.RefererNotAllowed, match=r"from example\.com\."):
        policy.require_origin(limited, None, "https://example.com")
