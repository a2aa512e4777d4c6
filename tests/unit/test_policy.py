"""Access policy: pure checks, each naming its reason."""

from __future__ import annotations

import dataclasses

import pytest

from gatewayz import errors
from gatewayz.identity import policy
from gatewayz.identity.auth import Caller
from gatewayz.ratelimit.limiter import Limits

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
    with pytest.raises(errors.ScopeDenied) as caught:
        policy.require_scope(BASE, "images")
    assert caught.value.message == "This API key lacks the `images` scope."
    policy.require_scope(caller(scopes=frozenset({"admin"})), "images")


def test_models_by_id_and_family() -> None:
    limited = caller(allowed_models=("openai/*", "meta-llama/llama-3.1-8b-instruct"))
    policy.require_model(limited, "openai/gpt-4o")
    policy.require_model(limited, "meta-llama/llama-3.1-8b-instruct")
    with pytest.raises(errors.ModelNotAllowed) as caught:
        policy.require_model(limited, "meta-llama/llama-3.3-70b-instruct")
    assert caught.value.param == "model"
    assert caught.value.message == (
        "This API key may not use the model `meta-llama/llama-3.3-70b-instruct`."
    )
    with pytest.raises(errors.ModelNotAllowed):
        policy.require_model(limited, "openaix/gpt")
    policy.require_model(BASE, "anything/at-all")


@pytest.mark.parametrize(
    ("ip", "refusal"),
    [("10.1.2.3", None), ("10.2.0.1", "This API key may not be used from 10.2.0.1."),
     ("2001:db8::1", None), ("2001:db9::1", "This API key may not be used from 2001:db9::1."),
     (None, "This API key is limited to certain IP addresses."),
     ("not-an-ip", "This API key is limited to certain IP addresses.")],
)  # fmt: skip
def test_client_ip_within_the_cidrs(ip: str | None, refusal: str | None) -> None:
    limited = caller(allowed_cidrs=("10.1.0.0/16", "2001:db8::/32"))
    if refusal is None:
        policy.require_ip(limited, ip)
    else:
        with pytest.raises(errors.IpNotAllowed) as caught:
            policy.require_ip(limited, ip)
        assert caught.value.message == refusal
    policy.require_ip(BASE, ip)


FROM = "This API key may not be used from {}."


@pytest.mark.parametrize(
    ("referer", "origin", "refusal"),
    [
        ("https://app.example.com/page", None, None),
        (None, "https://x.shop.example.org", None),
        (None, "https://shop.example.org", FROM.format("shop.example.org")),
        ("https://evil.com/?app.example.com", None, FROM.format("evil.com")),
        ("https://app.example.com.evil.com/", None, FROM.format("app.example.com.evil.com")),
        (None, None, "This API key requires a Referer or Origin header."),
        ("not a url", "", "This API key requires an http(s) Origin or Referer with a valid host."),
        ("https://evil.com", "https://app.example.com", None),  # Origin wins over Referer
    ],
)
def test_referer_and_origin(referer: str | None, origin: str | None, refusal: str | None) -> None:
    limited = caller(allowed_referers=("app.example.com", "*.shop.example.org"))
    if refusal is None:
        policy.require_origin(limited, referer, origin)
    else:
        with pytest.raises(errors.RefererNotAllowed) as caught:
            policy.require_origin(limited, referer, origin)
        assert caught.value.message == refusal
    policy.require_origin(BASE, referer, origin)


def test_origin_entries_match_whatever_their_case() -> None:
    # Hosts in URLs arrive lower-cased (`urlsplit`); an entry typed with capitals still counts.
    limited = caller(allowed_referers=("App.Example.com", "*.Shop.Example.ORG"))
    policy.require_origin(limited, None, "https://app.example.com")
    policy.require_origin(limited, None, "https://APP.EXAMPLE.COM")
    policy.require_origin(limited, "https://x.shop.example.org/cart", None)
    with pytest.raises(errors.RefererNotAllowed, match=r"from example\.com\."):
        policy.require_origin(limited, None, "https://example.com")


def test_a_route_may_accept_one_of_several_scopes() -> None:
    reader = caller(scopes=frozenset({"generations:read"}))
    policy.require_scope(reader, "generations:read", "chat")
    policy.require_scope(BASE, "generations:read", "chat")
    with pytest.raises(errors.ScopeDenied, match="generations:read"):
        policy.require_scope(caller(scopes=frozenset({"models:read"})), "generations:read", "chat")


BROWSER = caller(allowed_referers=("app.example.com", "*.shop.example.org", "::1"))


def allowed(referer: str | None = None, origin: str | None = None) -> bool:
    """Whether the browser key may be used with these headers (else a 403 said why)."""
    try:
        policy.require_origin(BROWSER, referer, origin)
    except errors.RefererNotAllowed:
        return False
    return True


@pytest.mark.parametrize(
    "url",
    [
        # Browsers read `\` as `/`: the host of these is evil.com.
        "https://evil.com\\@app.example.com",
        "https://evil.com\\app.example.com",
        # Userinfo, either way round.
        "https://app.example.com@evil.com",
        "https://user:pw@app.example.com",
        "https://@app.example.com",
    ],
)
def test_backslashes_and_userinfo_are_refused(url: str) -> None:
    assert not allowed(referer=url)
    assert not allowed(origin=url)


def test_a_backslash_in_the_query_is_only_query() -> None:
    # Browsers keep a backslash in a Referer's query; there it cannot move the host.
    assert allowed(referer="https://app.example.com/search?q=C:\\temp")
    assert not allowed(referer="https://evil.com?q=\\@app.example.com")
    assert not allowed(referer="https://evil.com\\?@app.example.com")
    assert not allowed(referer="https://evil.com\\@app.example.com?q=1")


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com\t",
        "https://evil.com\t@app.example.com",
        "https://app.exa\nmple.com",
        " https://app.example.com",
        "https://app.example.com/a b",
        "https://app.example.com\x00",
        "https://app.example.com\x7f",
        "https://app.exämple.com",
    ],
)
def test_whitespace_control_and_non_ascii_characters_are_refused(url: str) -> None:
    assert not allowed(origin=url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://app.example.com",
        "javascript://app.example.com/%0aalert(1)",
        "ws://app.example.com",
        "app.example.com",
        "//app.example.com",
        "null",
    ],
)
def test_only_http_and_https_urls_count(url: str) -> None:
    assert not allowed(origin=url)


@pytest.mark.parametrize(
    "url",
    [
        "https://app_example.com",
        "https://-app.example.com",
        "https://app..example.com",
        "https://app.example.com.",
        "https://app.example.com:99999",
        "https://app.example.com:https",
        "https://[::1",
        "https://" + "a" * 64 + ".example.com",
    ],
)
def test_an_invalid_host_or_port_is_refused(url: str) -> None:
    assert not allowed(origin=url)


def test_an_unparseable_origin_is_refused_even_beside_an_allowed_referer() -> None:
    assert not allowed(referer="https://app.example.com/", origin="null")
    assert not allowed(referer="https://app.example.com/", origin="https://evil.com\\@x.com")


def test_hosts_compare_without_regard_to_case() -> None:
    assert allowed(origin="https://APP.Example.COM")
    assert allowed(referer="HTTPS://x.Shop.EXAMPLE.org:8443/page?q=1#f")
    upper = caller(allowed_referers=("App.Example.COM", "*.SHOP.example.ORG"))
    policy.require_origin(upper, None, "https://app.example.com")
    policy.require_origin(upper, None, "https://a.shop.example.org")


def test_a_wildcard_matches_subdomains_only() -> None:
    assert allowed(origin="https://a.shop.example.org")
    assert allowed(origin="https://a.b.shop.example.org")
    assert not allowed(origin="https://shop.example.org")
    assert not allowed(origin="https://badshop.example.org")
    assert not allowed(origin="https://shop.example.org.evil.com")


def test_ip_literals_are_hosts_too() -> None:
    assert allowed(origin="http://[::1]:3000")
    assert not allowed(origin="http://[::2]:3000")
