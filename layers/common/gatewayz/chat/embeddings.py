"""`POST /v1/embeddings` (docs/api.md, embeddings): the chat path, one call per step, for a
request whose whole cost is its input.

Authenticate (scope `embeddings`), check policy, rate limit, price, reserve, call the
provider, answer, settle: the same steps as `completions.complete()`, through the same
`Call`, so the hold, the settlement, the usage record and the ledger entry work alike.
An embedding produces no output tokens: the hold is the input's upper bound at the
offer's input price, and it is all or nothing (no output to cut short). Only models
whose output modality is `embeddings` serve it, and no completion route serves them.
The provider is asked for floats; a client asking for `base64` gets each vector as
little-endian float32 bytes in base64, exactly as OpenAI encodes it.
"""

from __future__ import annotations

import base64
import math
import struct
import time
from typing import TYPE_CHECKING, Any

from gatewayz import config, errors, fastjson, jsonbody
from gatewayz.billing import credits, pricing
from gatewayz.chat import admission, budget, catalog, completions, providers, routing
from gatewayz.chat import embedding_request as embed_request
from gatewayz.chat import request as chat_request
from gatewayz.chat.call import Call, limits
from gatewayz.chat.prompt_size import PromptSize
from gatewayz.identity import access, policy, provider_keys
from gatewayz.record import record

if TYPE_CHECKING:
    from decimal import Decimal

    from starlette.requests import Request
    from starlette.responses import Response

    from gatewayz.chat.embedding_request import EmbeddingRequest
    from gatewayz.identity.auth import Caller

SCOPES = ("embeddings",)
ENDPOINT = "embeddings"  # the usage record's endpoint
_FLOAT32_MAX = 3.4028234663852886e38


async def create(request: Request) -> Response:
    """Serve one embeddings request.

    Raises:
        GatewayError: any refusal (the envelope of docs/api.md, errors).
    """
    started = time.perf_counter()
    caller = access.authorize(request, SCOPES)
    parsed = _parse(await request.body())
    policy.require_model(caller, parsed.model)
    settings = config.get_settings()
    plan = _plan(caller, parsed, settings)

    as_completion = _as_completion(parsed)
    call = await admission.reserve(
        request,
        caller,
        plan,
        as_completion,
        scopes=SCOPES,
        model=parsed.model,
        replan=lambda fresh: _plan(fresh, parsed, settings),
        refuse=lambda refusal, held, who: _refused(
            refusal, as_completion, held.max_nanos, who.account_id
        ),
        started=started,
    )
    call.endpoint = ENDPOINT
    try:
        answer = await routing.first_success(
            [r.attempt for r in call.routes()],
            lambda a: _fetch(a, call, parsed),
            max_attempts=settings.upstream_max_attempts,
        )
        return await _answer(call, parsed, answer)
    except BaseException as exc:
        call.fail(exc)
        raise


def _refused(
    refusal: credits.Refusal,
    as_completion: chat_request.CompletionRequest,
    max_nanos: int,
    account_id: str,
) -> errors.GatewayError:
    """As a completion is refused, but a lack of credits speaks of no output cap."""
    if refusal.reason == "credits":
        return errors.InsufficientCredits(
            f"Insufficient credits: this request may cost ${max_nanos / 1e9:.6f}. Add credits.",
            metadata={"limit_source": "credits"},
        )
    return completions.refusal(refusal.reason, as_completion, max_nanos, account_id)


def _parse(raw: bytes) -> EmbeddingRequest:
    try:
        return embed_request.parse(jsonbody.loads(raw))
    except RecursionError:
        raise errors.InvalidJSON("Request body is nested too deeply.") from None


def _plan(caller: Caller, parsed: EmbeddingRequest, settings: config.Settings) -> budget.Budget:
    """The offers to try and the hold that covers the dearest.

    Raises:
        ModelNotFound, NoProviderAvailable: nothing serves the model.
        InvalidRequest: the model makes no embeddings.
        ContextLengthExceeded: an input is longer than every model's context.
    """
    upstreams = providers.available(settings, provider_keys.own_keys(caller))
    served = catalog.models(upstreams)
    model = served.get(parsed.model)
    if model is None:
        raise errors.ModelNotFound(f"The model `{parsed.model}` does not exist.", param="model")
    if not model.embeds:
        raise errors.InvalidRequest(
            f"The model `{parsed.model}` does not create embeddings.", param="model"
        )
    wanted = [
        served[m] for m in parsed.models if m in served and served[m].embeds and _allowed(caller, m)
    ]
    attempts = routing.plan(
        wanted, routing.Preferences.parse(parsed.body.get("provider")), upstreams
    )
    if not attempts:
        raise errors.NoProviderAvailable(
            f"No provider can serve `{parsed.model}` with these provider preferences."
        )
    fitting = [
        a
        for a in attempts
        if parsed.longest_typical <= (a.offer.context_length or a.model.context_length)
    ]
    if not fitting:
        raise errors.ContextLengthExceeded(
            f"An input is longer than `{parsed.model}`'s context of {model.context_length} tokens.",
            param="input",
        )
    return _budget(fitting, parsed, settings.byok_fee_percent)


def _budget(
    attempts: list[routing.Attempt], parsed: EmbeddingRequest, byok_percent: Decimal
) -> budget.Budget:
    """Each attempt's route, with no output (cap 0), and the hold of the dearest: the
    input's bound at the input price, all of it or nothing."""
    routes = tuple(
        budget.Route(
            attempt=a,
            prompt_tokens=parsed.bound,
            typical_prompt_tokens=parsed.typical,
            cap=0,
            fee_nanos=0,
            byok_percent=byok_percent if a.upstream.own_key else None,
        )
        for a in attempts
    )
    held = max(
        min(r.charge_nanos(pricing.hold_nanos(r.attempt.offer.price, parsed.bound, 0)),
            budget.MAX_HOLD_NANOS)
        for r in routes
    )  # fmt: skip
    return budget.Budget(
        routes=routes,
        max_nanos=held,
        min_nanos=held,
        outputs=1,
        extra_output_tokens=0,
        explicit=True,
    )


def _as_completion(parsed: EmbeddingRequest) -> chat_request.CompletionRequest:
    """The request as `Call` knows requests: one prompt, no output."""
    return chat_request.CompletionRequest(
        body=parsed.body,
        chat=False,
        models=parsed.models,
        stream=False,
        include_usage=False,
        max_output_tokens=None,
        outputs=1,
        prompt=PromptSize(
            bound=parsed.bound,
            typical=parsed.typical,
            longest_typical=parsed.longest_typical,
            prompts=parsed.inputs,
        ),
        extra_output_tokens=0,
        features={},
    )


def _allowed(caller: Caller, model: str) -> bool:
    try:
        policy.require_model(caller, model)
    except errors.ModelNotAllowed:
        return False
    return True


@record
class _Answer:
    attempt: routing.Attempt
    vectors: list[list[float]]  # in input order
    usage: dict[str, Any] | None  # the provider's, when it sent one


async def _fetch(attempt: routing.Attempt, call: Call, parsed: EmbeddingRequest) -> _Answer:
    """One attempt: every input's vector, or a retryable failure."""
    call.route = next(r for r in call.plan.routes if r.attempt is attempt)
    call.upstream_started = time.perf_counter()
    payload = await routing.post_json(attempt, "/embeddings", parsed.body, limits=limits())
    vectors = _vectors(payload, parsed.inputs)
    if vectors is None:
        raise routing.Retryable("the answer holds no embedding for every input")
    usage = payload.get("usage")
    call.upstream_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    return _Answer(attempt, vectors, usage if isinstance(usage, dict) else None)


def _vectors(payload: object, inputs: int) -> list[list[float]] | None:
    """The vectors of an OpenAI embeddings answer in input order; None unless there is
    exactly one list of finite numbers for each input."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != inputs:
        return None
    found: dict[int, list[float]] = {}
    for item in data:
        index = item.get("index") if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not isinstance(vector, list) or not vector:
            return None
        floats = _floats(vector)
        if floats is None:
            return None
        found[index] = floats
    if sorted(found) != list(range(inputs)):
        return None
    return [found[i] for i in range(inputs)]


def _floats(vector: list[Any]) -> list[float] | None:
    """`vector` as floats if every element is a number float32 holds, else None.

    A vector of floats (what providers send) is checked with a few passes in C instead
    of a call per element: a sum of absolute values is finite only when no element is
    infinite or NaN, and then the largest must fit float32.
    """
    if set(map(type, vector)) == {float}:
        total = sum(map(abs, vector))
        if math.isfinite(total) and max(map(abs, vector)) <= _FLOAT32_MAX:
            return vector
        return None
    if not all(_finite(x) for x in vector):  # ints among them, or something else
        return None
    return [float(x) for x in vector]


def _finite(value: object) -> bool:
    """A number float32 holds (base64 answers are float32)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= _FLOAT32_MAX
    )


async def _answer(call: Call, parsed: EmbeddingRequest, answer: _Answer) -> Response:
    from starlette.responses import Response

    call.first_token = time.perf_counter()
    reported = answer.usage.get("prompt_tokens") if answer.usage else None
    estimated = not isinstance(reported, int) or isinstance(reported, bool) or reported < 0
    prompt = parsed.typical if estimated else int(reported)  # type: ignore[arg-type]
    usage = pricing.Usage(input_tokens=prompt)
    cost = await call.settle(usage, status=200, estimated=estimated)
    data = [
        {"object": "embedding", "index": i, "embedding": encode(v) if parsed.base64 else v}
        for i, v in enumerate(answer.vectors)
    ]
    body = {
        "object": "list",
        "data": data,
        "model": answer.attempt.offer.model_id,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt, **call.usage_costs(usage, cost)},
        "provider": answer.attempt.upstream.name,
    }
    return Response(fastjson.dumps(body), media_type="application/json")


def encode(vector: list[float]) -> str:
    """`vector` as OpenAI's `encoding_format: "base64"`: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
