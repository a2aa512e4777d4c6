"""Routing (DESIGN §3 steps 4 and 6): which offers to try, in which order, and when to
move on to the next.

The plan follows the models asked for (`model`, then the `models` fallback list) and, for
each, its offers in configured priority, reshaped by an OpenRouter-style `provider`
object (`order`, `only`, `ignore`, `allow_fallbacks`, `sort`). An attempt fails over to
the next only on 408, 429, 5xx, a timeout or a connection error, and only before the
client got a byte; other upstream errors are final.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gatewayz import errors

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import httpx

    from gatewayz.catalog import Model
    from gatewayz.pricing import Offer
    from gatewayz.providers import Upstream


@dataclass(frozen=True, slots=True)
class Attempt:
    """One offer to try, and the upstream that serves it."""

    model: Model
    offer: Offer
    upstream: Upstream


@dataclass(frozen=True, slots=True)
class Preferences:
    """The request's `provider` object (OpenRouter's provider routing)."""

    order: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    sort: str | None = None  # "price"

    @classmethod
    def parse(cls, value: object) -> Preferences:
        """From the request body's `provider` field.

        Raises:
            InvalidRequest: it is not an object of known fields with the right types.
        """
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise errors.InvalidRequest("`provider` must be an object.", param="provider")

        def names(field: str) -> tuple[str, ...] | None:
            items = value.get(field)
            if items is None:
                return None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise errors.InvalidRequest(
                    f"`provider.{field}` must be a list of provider names.",
                    param=f"provider.{field}",
                )
            return tuple(i.lower() for i in items)

        fallbacks = value.get("allow_fallbacks", True)
        sort = value.get("sort")
        if not isinstance(fallbacks, bool):
            raise errors.InvalidRequest(
                "`provider.allow_fallbacks` must be a boolean.", param="provider.allow_fallbacks"
            )
        if sort not in (None, "price", "priority"):
            raise errors.InvalidRequest(
                '`provider.sort` must be "price" or "priority".', param="provider.sort"
            )
        return cls(
            order=names("order") or (),
            only=names("only"),
            ignore=names("ignore") or (),
            allow_fallbacks=fallbacks,
            sort=sort,
        )


def plan(
    models: Sequence[Model], prefs: Preferences, upstreams: dict[str, Upstream]
) -> list[Attempt]:
    """Every attempt in the order to try them."""
    attempts = []
    for model in models:
        offers = [
            o
            for o in model.offers
            if o.provider in upstreams
            and o.price.serves_text
            and (prefs.only is None or o.provider in prefs.only)
            and o.provider not in prefs.ignore
        ]
        if prefs.sort == "price":
            offers.sort(key=lambda o: (o.price.input or 0) + (o.price.output or 0))
        if prefs.order:
            ranked = {name: i for i, name in enumerate(prefs.order)}
            listed = sorted(
                (o for o in offers if o.provider in ranked), key=lambda o: ranked[o.provider]
            )
            offers = (
                listed
                if not prefs.allow_fallbacks
                else listed + [o for o in offers if o.provider not in ranked]
            )
        elif not prefs.allow_fallbacks:
            offers = offers[:1]
        attempts += [Attempt(model, o, upstreams[o.provider]) for o in offers]
    return attempts


class Retryable(Exception):
    """An attempt failed in a way the next one may not: 408/429/5xx, timeout, connection."""

    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.timeout = timeout


async def first_success[T](
    attempts: Sequence[Attempt],
    send: Callable[[Attempt], Awaitable[T]],
    *,
    max_attempts: int,
) -> T:
    """The result of the first attempt that does not fail retryably.

    Raises:
        UpstreamTimeout: the last attempt timed out.
        UpstreamError: every attempt failed otherwise.
        GatewayError: an attempt failed in a way no other offer would fix.
    """
    from gatewayz.logs import get_logger

    last: Retryable | None = None
    for attempt in attempts[:max_attempts]:
        try:
            return await send(attempt)
        except Retryable as exc:
            last = exc
            get_logger().warning(
                "upstream attempt failed",
                extra={
                    "provider": attempt.upstream.name,
                    "model": attempt.offer.model_id,
                    "reason": str(exc),
                },
            )
    if last is not None and last.timeout:
        raise errors.UpstreamTimeout("The provider did not answer in time.")
    raise errors.UpstreamError("The provider failed to answer. Try again later.")


async def open_response(
    attempt: Attempt, path: str, body: dict[str, Any], *, stream: bool, timeouts: httpx.Timeout
) -> httpx.Response:
    """Send the request to the attempt's upstream; the response is open and unread.

    Raises:
        Retryable: 408/429/5xx, a timeout or a connection error.
        InvalidRequest: the upstream refused the request itself (400/413/422); its own
            message is passed on, since it is about the client's request.
        UpstreamError: the upstream refused us (401/403/404 and other 4xx).
    """
    import httpx

    upstream = attempt.upstream
    payload = upstream.provider.body(body, attempt.offer.provider_model_id, stream=stream)
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        **upstream.provider.headers(upstream.api_key),
    }
    client = http_client(upstream)
    request = client.build_request(
        "POST",
        upstream.base_url + path,
        content=json.dumps(payload),
        headers=headers,
        timeout=timeouts,
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise Retryable(f"timeout: {type(exc).__name__}", timeout=True) from None
    except httpx.TransportError as exc:
        raise Retryable(f"connection: {type(exc).__name__}") from None
    if response.status_code < 400:
        return response
    status = response.status_code
    try:
        detail = await response.aread() if status in (400, 413, 422) else b""
    except httpx.HTTPError:
        detail = b""
    finally:
        await response.aclose()
    if status in (408, 429) or status >= 500:
        raise Retryable(f"status {status}")
    if status in (400, 413, 422):
        raise errors.InvalidRequest(f"The provider rejected the request: {_message(detail)}")
    raise errors.UpstreamError(f"The provider refused the request (status {status}).")


def _message(body: bytes) -> str:
    """The upstream's own error message for a 4xx, short; never a 5xx body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return "invalid request"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message)[:500] if message else "invalid request"


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def http_client(upstream: Upstream) -> httpx.AsyncClient:
    """One reused client per event loop (per transport): connections stay warm across
    requests of a warm function."""
    import httpx

    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    transport = upstream.provider.transport()
    name = upstream.name if transport is not None else ""
    client = clients.get(name)
    if client is None:
        client = clients[name] = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
    return client
