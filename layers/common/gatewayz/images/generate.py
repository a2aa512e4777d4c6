"""`POST /v1/images/generations` (docs/api.md, images): the chat path, one call per step,
for a request billed per image.

Authenticate (scope `images`), check policy, validate against the model's rule, rate
limit, price, reserve, call the provider, store, answer, settle: the steps of
`completions.complete()`, through the same `Call`, so the hold, the settlement, the
usage record (`images`) and the ledger entry work alike. The hold is every image at the
offer's per-image price for the size and quality asked (gatewayz/images/rules.py), all
or nothing. The rate limiter counts the request and the prompt's typical tokens.
Images are stored before the request settles: one the gateway could not store is not
charged.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gatewayz import config, errors, jsonbody
from gatewayz.billing import pricing
from gatewayz.chat import admission, budget, catalog, completions, providers, routing
from gatewayz.chat import request as chat_request
from gatewayz.chat.call import Call, limits
from gatewayz.chat.prompt_size import PromptSize
from gatewayz.identity import access, policy, provider_keys
from gatewayz.images import request as image_request
from gatewayz.images import results, rules, storage
from gatewayz.ratelimit import limiter

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from gatewayz.chat.model import Model
    from gatewayz.identity.auth import Caller
    from gatewayz.images.request import ImageRequest

SCOPES = ("images",)
ENDPOINT = "images.generations"  # the usage record's endpoint


async def create(request: Request) -> Response:
    """Serve one image generation request.

    Raises:
        GatewayError: any refusal (the envelope of docs/api.md, errors).
    """
    started = time.perf_counter()
    caller = access.authorize(request, SCOPES)
    body = _body(await request.body())
    model_id = image_request.model_of(body)
    policy.require_model(caller, model_id)
    parsed = image_request.parse(body, rules.rule(model_id))
    store = storage.backend(request) if parsed.response_format == "url" else None
    settings = config.get_settings()
    plan = _plan(caller, parsed, settings)

    limiter.require_fits(caller, plan.least_tokens, param="prompt")
    as_completion = _as_completion(parsed)
    call = await admission.reserve(
        request,
        caller,
        plan,
        as_completion,
        scopes=SCOPES,
        model=model_id,
        replan=lambda fresh: _plan(fresh, parsed, settings),
        refuse=lambda refusal, held, who: completions.refusal(
            refusal.reason, as_completion, held.max_nanos, who.account_id
        ),
        started=started,
    )
    call.endpoint = ENDPOINT
    try:
        made = await routing.first_success(
            [r.attempt for r in call.routes()],
            lambda a: _fetch(a, call, parsed, settings),
            max_attempts=settings.upstream_max_attempts,
        )
        return await _answer(call, parsed, made, store)
    except BaseException as exc:
        call.fail(exc)
        raise


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = jsonbody.loads(raw)
    except RecursionError:
        raise errors.InvalidJSON("Request body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    return body


def _plan(caller: Caller, parsed: ImageRequest, settings: config.Settings) -> budget.Budget:
    """The offers to try and the hold that covers the dearest: every image at its price.

    Raises:
        ModelNotFound, NoProviderAvailable: nothing serves the model.
        InvalidRequest: the model makes no images, or `provider` leaves no offer.
    """
    upstreams = providers.available(settings, provider_keys.own_keys(caller))
    model = catalog.models(upstreams).get(parsed.model)
    if model is None:
        raise errors.ModelNotFound(
            f"The model `{errors.quote(parsed.model)}` does not exist.", param="model"
        )
    if not any(o.price.image is not None for o in model.offers):
        raise errors.InvalidRequest(
            f"The model `{parsed.model}` does not generate images.", param="model"
        )
    prefs = routing.Preferences.parse(parsed.provider)
    attempts = routing.plan([model], prefs, upstreams, images=True)
    if not attempts:
        raise routing.no_attempts([model], prefs, upstreams, images=True)
    factor = rules.rule(parsed.model).factor(parsed.quality, parsed.size)
    routes = tuple(_route(a, model, parsed, factor, settings) for a in attempts)
    usage = pricing.Usage(images=parsed.n)
    held = max(min(r.charge_nanos(r.catalog_nanos(usage)), budget.MAX_HOLD_NANOS) for r in routes)
    return budget.Budget(
        routes=routes, max_nanos=held, min_nanos=held, outputs=1, extra_output_tokens=0,
        explicit=True,
    )  # fmt: skip


def _route(
    attempt: routing.Attempt,
    model: Model,
    parsed: ImageRequest,
    factor: Decimal,
    settings: config.Settings,
) -> budget.Route:
    """`attempt` priced for this request: its image price times the size and quality
    factor; the prompt's tokens priced 0 (they are counted, not billed)."""
    image_price = attempt.offer.price.image
    assert image_price is not None
    price = pricing.Price(input=Decimal(0), output=Decimal(0), image=image_price * factor)
    offer = dataclasses.replace(attempt.offer, price=price)
    return budget.Route(
        attempt=routing.Attempt(model, offer, attempt.upstream),
        prompt_tokens=parsed.prompt_tokens,
        typical_prompt_tokens=parsed.prompt_tokens,
        cap=0,
        fee_nanos=0,
        byok_percent=settings.byok_fee_percent if attempt.upstream.own_key else None,
    )


def _as_completion(parsed: ImageRequest) -> chat_request.CompletionRequest:
    """The request as `Call` knows requests: one prompt, no output tokens."""
    tokens = parsed.prompt_tokens
    return chat_request.CompletionRequest(
        body=parsed.upstream_body(),
        chat=False,
        models=(parsed.model,),
        stream=False,
        include_usage=False,
        max_output_tokens=None,
        outputs=1,
        prompt=PromptSize(bound=tokens, typical=tokens, longest_typical=tokens, prompts=1),
        extra_output_tokens=0,
        features={},
    )


async def _fetch(
    attempt: routing.Attempt, call: Call, parsed: ImageRequest, settings: config.Settings
) -> list[results.Image]:
    """One attempt: the images, or a retryable failure."""
    call.route = next(r for r in call.plan.routes if r.attempt is attempt)
    call.upstream_started = time.perf_counter()
    payload = await routing.post_json(
        attempt, "/images/generations", parsed.upstream_body(), limits=limits()
    )
    return await results.images(
        payload,
        parsed.n,
        max_bytes=settings.images_fetch_max_bytes,
        timeout_s=settings.images_fetch_timeout_s,
    )


async def _answer(
    call: Call, parsed: ImageRequest, made: list[results.Image], store: storage.Store | None
) -> Response:
    from starlette.responses import Response

    route = call.route
    assert route is not None
    call.first_token = time.perf_counter()
    data = []
    for index, image in enumerate(made):
        if store is None:
            item: dict[str, Any] = {"b64_json": base64.b64encode(image.data).decode()}
        else:
            name = storage.object_name(
                call.caller.account_id, call.request_id, index, image.content_type
            )
            item = {"url": await store.put(name, image.data, image.content_type)}
        if image.revised_prompt is not None:
            item["revised_prompt"] = image.revised_prompt
        data.append(item)
    _require_answerable(data, config.get_settings().images_max_answer_bytes)
    usage = pricing.Usage(input_tokens=parsed.prompt_tokens, images=len(made))
    cost = await call.settle(usage, status=200)
    answer = {
        "created": int(time.time()),
        "data": data,
        "model": route.attempt.offer.model_id,
        "usage": {"images": len(made), **call.usage_costs(usage, cost)},
        "provider": route.attempt.upstream.name,
    }
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")


def _require_answerable(data: list[dict[str, Any]], max_bytes: int) -> None:
    """Refuse, before charging, an answer too large to reach the client: Lambda's
    buffered response holds 6 MB, so many large images as `b64_json` never would.

    Raises:
        InvalidRequest: naming `response_format` (a `url` answer is small).
    """
    size = sum(len(item.get("b64_json", "")) for item in data)
    if size > max_bytes:
        raise errors.InvalidRequest(
            f"These images are {size / 1e6:.1f} MB as b64_json, more than the "
            f"{max_bytes / 1e6:.1f} MB an answer may hold: ask for response_format url, "
            "or fewer images.",
            param="response_format",
        )
