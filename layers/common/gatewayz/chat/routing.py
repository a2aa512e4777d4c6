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

import math
from typing import TYPE_CHECKING, Any, NoReturn

from gatewayz import errors, fastjson
from gatewayz.chat import refusals
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from gatewayz.billing.pricing import Offer
    from gatewayz.chat.model import Model
    from gatewayz.chat.providers import Upstream
    from gatewayz.chat.upstream import Limits, Reply


@record
class Attempt:
    """One offer to try, and the upstream that serves it."""

    model: Model
    offer: Offer
    upstream: Upstream


@record
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
            if field == "only" and not items:
                raise errors.InvalidRequest(
                    "`provider.only` is empty, so no provider may serve the request.",
                    param="provider.only",
                )
            unknown = [i for i in items if i.lower() not in known_providers()]
            if unknown:
                raise errors.InvalidRequest(
                    f"Unknown provider in `provider.{field}`: `{errors.quote(unknown[0])}`. "
                    f"Known: {', '.join(sorted(known_providers()))}.",
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


def known_providers() -> frozenset[str]:
    """Every provider name a request may name in `provider` (configured here or not)."""
    from gatewayz.chat.providers import REGISTRY, mock

    return frozenset([*REGISTRY, mock.PROVIDER.name])


def no_attempts(
    models: Sequence[Model],
    prefs: Preferences,
    upstreams: dict[str, Upstream],
    *,
    images: bool = False,
) -> errors.GatewayError:
    """Why `plan` found nothing to try: the client's `provider` preferences left no
    provider (a 400 naming the field, since a retry cannot change it), or none is
    available for these models (a 503)."""
    if not plan(models, Preferences(), upstreams, images=images):
        return errors.NoProviderAvailable("No provider is available for this model.")
    if prefs.only is not None and not plan(
        models, Preferences(only=prefs.only), upstreams, images=images
    ):
        field = "only"
    elif prefs.ignore and not plan(
        models, Preferences(only=prefs.only, ignore=prefs.ignore), upstreams, images=images
    ):
        field = "ignore"
    else:  # `order` with `allow_fallbacks: false`
        field = "order"
    return errors.InvalidRequest(
        f"`provider.{field}` leaves no provider that serves this model.",
        param=f"provider.{field}",
    )


def plan(
    models: Sequence[Model],
    prefs: Preferences,
    upstreams: dict[str, Upstream],
    *,
    images: bool = False,
) -> list[Attempt]:
    """Every attempt in the order to try them: offers priced for text, or with
    `images` those priced per image (gatewayz/images)."""
    attempts = []
    for model in models:
        offers = [
            o
            for o in model.offers
            if o.provider in upstreams
            and (o.price.image is not None if images else o.price.serves_text)
            and (prefs.only is None or o.provider in prefs.only)
            and o.provider not in prefs.ignore
        ]
        if prefs.sort == "price":
            offers.sort(
                key=lambda o: (
                    (o.price.image or 0) if images else (o.price.input or 0) + (o.price.output or 0)
                )
            )
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

    def __init__(
        self,
        reason: str,
        *,
        timeout: bool = False,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.timeout = timeout
        self.status = status  # the provider's, when it answered
        self.retry_after_s = retry_after_s


async def first_success[T](
    attempts: Sequence[Attempt],
    send: Callable[[Attempt], Awaitable[T]],
    *,
    max_attempts: int,
) -> T:
    """The result of the first attempt that does not fail retryably.

    Raises:
        UpstreamRateLimited: every attempt answered 429 (`Retry-After`: the shortest wait
            any of them asked for).
        UpstreamTimeout: the last attempt timed out.
        UpstreamError: every attempt failed otherwise.
        GatewayError: an attempt failed in a way no other offer would fix.
    """
    from gatewayz.logs import get_logger

    last: Retryable | None = None
    failures: list[Retryable] = []
    for attempt in attempts[:max_attempts]:
        try:
            return await send(attempt)
        except Retryable as exc:
            last = exc
            failures.append(exc)
            get_logger().warning(
                "upstream attempt failed",
                extra={
                    "provider": attempt.upstream.name,
                    "model": attempt.offer.model_id,
                    "reason": str(exc),
                },
            )
    if failures and all(f.status == 429 for f in failures):
        return _rate_limited(failures)
    if last is not None and last.timeout:
        raise errors.UpstreamTimeout("The provider did not answer in time.")
    raise errors.UpstreamError("The provider failed to answer. Try again later.")


def _rate_limited(failures: list[Retryable]) -> NoReturn:
    """A 429 the SDKs retry after the shortest wait a provider asked for (none said: no
    `Retry-After`, and the SDKs back off on their own)."""
    waits = [f.retry_after_s for f in failures if f.retry_after_s is not None]
    headers = {"retry-after": str(max(1, math.ceil(min(waits))))} if waits else {}
    raise errors.UpstreamRateLimited(
        "Every provider of this model is rate limiting the gateway; retry shortly.",
        metadata={"limit": "provider"},
        headers=headers,
    )


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
        payload = fastjson.dumps(
            provider.body(body, attempt.offer.provider_model_id, stream=stream)
        )
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
            payload,
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
        raise Retryable(f"status {status}", status=status, retry_after_s=reply.retry_after_s)
    if status in (400, 413, 422):
        message, param = refusals.upstream_refusal(detail, attempt.upstream.api_key)
        raise errors.InvalidRequest(f"The provider rejected the request: {message}", param=param)
    if status in (401, 403) and attempt.upstream.own_key:
        # The account's own key: its owner must fix it. Serving the request with our key
        # instead would bill the account in full without its knowing.
        name = attempt.upstream.name
        raise errors.ProviderKeyRejected(
            f"{name} refused this account's own {name} key (status {status}). Replace it "
            f"(POST /v1/provider-keys) or delete it (DELETE /v1/provider-keys/{name}).",
            metadata={"provider": name, "provider_status": status},
        )
    if status in (401, 403, 404):
        # Our key or the model id the provider refused: the same until an operator acts.
        raise errors.UpstreamRefused(f"The provider refused the request (status {status}).")
    raise errors.UpstreamError(f"The provider refused the request (status {status}).")


async def post_json(attempt: Attempt, path: str, body: dict[str, Any], *, limits: Limits) -> Any:
    """Send a non-streamed request and read its whole answer as JSON.

    Raises:
        Retryable: what `open_response` retries, a timeout or broken connection while
            reading, or an answer that is not JSON.
        what `open_response` raises otherwise.
    """
    from gatewayz.chat import upstream as http

    reply = await open_response(attempt, path, body, stream=False, limits=limits)
    try:
        raw = await reply.read()
    except http.Timeout:
        raise Retryable("timeout reading the answer", timeout=True) from None
    except http.Broken as exc:
        raise Retryable(f"reading the answer: {exc}") from None
    finally:
        await reply.close()
    try:
        return fastjson.loads(raw)
    except ValueError:
        raise Retryable("the answer is not JSON") from None
