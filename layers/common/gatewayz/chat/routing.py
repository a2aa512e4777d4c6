"""Routing (docs/architecture.md, steps 4 and 6): which offers to try, in which order, and when to
move on to the next.

The plan follows the models asked for (`model`, then the `models` fallback list) and, for
each, its offers in configured priority, reshaped by an OpenRouter-style `provider`
object (`order`, `only`, `ignore`, `allow_fallbacks`, `sort`; `require_parameters` is
applied by gatewayz/chat/parameters.py). An attempt fails over to the next only on 408,
429, 5xx, a timeout or a connection error, and only before the client got a byte; other
upstream errors are final.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gatewayz import errors

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from gatewayz.billing.pricing import Offer
    from gatewayz.chat.model import Model
    from gatewayz.chat.providers import Upstream
    from gatewayz.chat.upstream import Limits, Reply


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
    require_parameters: bool = False  # serve only with models that support every parameter

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
        required = value.get("require_parameters", False)
        sort = value.get("sort")
        for field, flag in (("allow_fallbacks", fallbacks), ("require_parameters", required)):
            if not isinstance(flag, bool):
                raise errors.InvalidRequest(
                    f"`provider.{field}` must be a boolean.", param=f"provider.{field}"
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
            require_parameters=required,
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
    attempt: Attempt, path: str, body: dict[str, Any], *, stream: bool, limits: Limits
) -> Reply:
    """Send the request to the attempt's upstream; the reply is open and unread.

    Raises:
        Retryable: 408/429/5xx, a timeout or a connection error.
        InvalidRequest: the upstream refused the request itself (400/413/422); its own
            message is passed on, since it is about the client's request.
        ProviderKeyRejected: the upstream refused the account's own key (401/403).
        UpstreamError: the upstream refused us (401/403/404 and other 4xx).
    """
    from gatewayz.chat import upstream as http

    provider = attempt.upstream.provider
    try:
        payload = json.dumps(provider.body(body, attempt.offer.provider_model_id, stream=stream))
    except RecursionError:
        raise errors.InvalidRequest("Request body is nested too deeply.") from None
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        **provider.headers(attempt.upstream.api_key),
    }
    try:
        reply = await http.post(
            attempt.upstream.base_url,
            path,
            payload.encode(),
            headers,
            limits,
            local=provider.serve_locally(),
        )
    except http.Timeout as exc:
        raise Retryable(f"timeout: {exc}", timeout=True) from None
    except http.Broken as exc:
        raise Retryable(f"connection: {exc}") from None
    if reply.status < 400:
        return reply
    status = reply.status
    try:
        detail = await reply.read() if status in (400, 413, 422) else b""
    except (http.Timeout, http.Broken):
        detail = b""
    finally:
        await reply.close()
    if status in (408, 429) or status >= 500:
        raise Retryable(f"status {status}")
    if status in (400, 413, 422):
        # A provider may quote the key it was sent; it is never passed on.
        message = _message(detail).replace(attempt.upstream.api_key, "[redacted]")
        raise errors.InvalidRequest(f"The provider rejected the request: {message}")
    if status in (401, 403) and attempt.upstream.own_key:
        # The account's own key: its owner must fix it. Serving the request with our key
        # instead would bill the account in full without its knowing.
        name = attempt.upstream.name
        raise errors.ProviderKeyRejected(
            f"{name} refused this account's own {name} key (status {status}). Replace it "
            f"(POST /v1/provider-keys) or delete it (DELETE /v1/provider-keys/{name}).",
            metadata={"provider": name, "provider_status": status},
        )
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
