"""Browsers: CORS preflights and headers (docs/api.md, CORS).

Every function's app answers an `OPTIONS` preflight itself and marks every answer to a
request carrying `Origin` (errors included, so a browser shows a 401/403/429 instead of a
network error) as readable by that origin. The origin is echoed, never `*` with
credentials: the API is authenticated by the bearer key, not by cookies, so any page may
call it with a key it holds, and a key restricted to some referers still refuses a
foreign origin with its 403 (`policy.require_origin`). template.yaml routes every method
of a path, `OPTIONS` included, to the function serving it and gives API Gateway's own
answers the same headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import Scope

__all__ = [
    "ALLOW_HEADERS",
    "ALLOW_METHODS",
    "EXPOSE_HEADERS",
    "MAX_AGE_S",
    "is_preflight",
    "origin_of",
    "preflight_headers",
    "response_headers",
]

ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# A preflight lists every non-safelisted header the page's request carries; one missing
# from this list fails the whole request. Listed by name: `*` does not cover
# `authorization`, and there is no `x-stainless-*`. These are what openai-node (and
# openai-python, LangChain, the Vercel AI SDK) send, OpenRouter's attribution headers and
# ours.
ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "user-agent",
    "idempotency-key",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "http-referer",
    "x-title",
    "x-session-id",
    "x-gatewayz-account",
    "x-stainless-arch",
    "x-stainless-async",
    "x-stainless-custom-poll-interval",
    "x-stainless-helper",
    "x-stainless-helper-method",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-poll-helper",
    "x-stainless-raw-response",
    "x-stainless-read-timeout",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-stream-helper",
    "x-stainless-timeout",
)

# Headers a page's script may read besides the safelisted ones: the SDKs read the retry
# hints to decide on a retry, and people read the request id and the limits.
EXPOSE_HEADERS = (
    "x-request-id",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "idempotent-replayed",
)

# Browsers cap it (Chromium at 2 hours, Firefox at 24): one preflight per path per page.
MAX_AGE_S = 7200

_ALLOW_METHODS = ", ".join(ALLOW_METHODS)
_ALLOW_HEADERS = ", ".join(ALLOW_HEADERS)
_EXPOSE_HEADERS = ", ".join(EXPOSE_HEADERS)


def origin_of(scope: Scope) -> str | None:
    """The request's `Origin` header, if it has one (browsers send it cross-origin)."""
    for name, value in scope["headers"]:
        if name == b"origin":
            return value.decode("latin-1") or None
    return None


def is_preflight(scope: Scope) -> bool:
    """An `OPTIONS` request: a browser's preflight, answered before any route or key check.

    A bare `OPTIONS` (no `Access-Control-Request-Method`) gets the same answer: no route
    serves `OPTIONS` otherwise, and nothing behind the path runs for it.
    """
    return bool(scope["method"] == "OPTIONS")


def response_headers(origin: str | None) -> dict[str, str]:
    """What every answer to a request from `origin` carries (nothing without one)."""
    if origin is None:
        return {}
    return {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": _EXPOSE_HEADERS,
        "vary": "Origin",
    }


def preflight_headers() -> dict[str, str]:
    """What a preflight's answer carries besides `response_headers`: which methods and
    headers may follow, and for how long the browser may remember it."""
    return {
        "access-control-allow-methods": _ALLOW_METHODS,
        "access-control-allow-headers": _ALLOW_HEADERS,
        "access-control-max-age": str(MAX_AGE_S),
    }
