"""The chat path (docs/architecture.md), one call per step: authenticate, check policy, rate limit,
price, reserve, call the provider, answer, settle.

`complete()` serves `/v1/chat/completions` and `/v1/completions`, streamed or not. From
the moment credits are held until the request is settled, every way out (an answer, an
error, a crash in between) goes through `Call.settle`, so nothing is charged without a
usage record and nothing is recorded without its charge. Steps 3 and 5 (rate limit and
hold, overlapped) are gatewayz/chat/admission.py's, as for every billed route: a request
refused there gives back its rate-limit counts and its hold at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gatewayz import config, errors, fastjson, http, jsonbody
from gatewayz.billing import pricing, spend_limit
from gatewayz.chat import (
    admission,
    answer_shape,
    budget,
    catalog,
    fees,
    parameters,
    providers,
    routing,
)
from gatewayz.chat import request as chat_request
from gatewayz.chat.call import Call, limits
from gatewayz.chat.output_meter import OutputMeter
from gatewayz.chat.relay import Relay, open_stream
from gatewayz.history import injection
from gatewayz.identity import access, policy, provider_keys
from gatewayz.ratelimit import limiter
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request
    from starlette.responses import Response

    from gatewayz.chat.request import CompletionRequest
    from gatewayz.identity.auth import Caller


async def complete(
    request: Request,
    *,
    chat: bool,
    parse: Callable[[bytes], CompletionRequest] | None = None,
    endpoint: str | None = None,
) -> Response:
    """Serve one completion request; `parse` reads another API's body as a chat request
    (the Responses API's) in place of `_parse`, and `endpoint` names it in usage records.

    Raises:
        GatewayError: any refusal before the answer began (the envelope of docs/api.md, errors).
    """
    started = time.perf_counter()
    # The key and what it may do first: a caller without a valid key learns nothing
    # about the body.
    caller = access.authorize(request, ("chat",))
    raw = await request.body()
    parsed = parse(raw) if parse is not None else _parse(raw, chat=chat)
    allowed = _first_allowed(caller, parsed)

    settings = config.get_settings()
    attempts = _attempts(caller, parsed, settings)
    plan = _budget(attempts, parsed, settings)
    transcript = None
    ask = injection.asked(request, parsed, chat=chat and parse is None)
    if ask is not None:  # one more round trip, only for a request naming a chat session
        policy.require_scope(caller, "history")  # it reads and writes the user's history
        parsed, transcript = await injection.inject(
            caller, ask, parsed, plan, settings.history_max_tokens, request.state.request_id
        )
        # The same offers (history changes the messages only), costed for the longer prompt.
        plan = _budget(attempts, parsed, settings)
        request.state.response_headers.update(injection.headers(transcript))

    limiter.require_fits(
        caller,
        plan.least_tokens,
        param=parsed.max_output_param or ("messages" if chat else "prompt"),
    )
    call = await admission.reserve(
        request,
        caller,
        plan,
        parsed,
        scopes=("chat",),
        model=allowed,
        # A key changed meanwhile: its allowlist may have changed, so may the fallbacks.
        replan=lambda fresh: _budget(_attempts(fresh, parsed, settings), parsed, settings),
        refuse=lambda refusal, held, who: _refused(
            refusal.reason, parsed, held.max_nanos, who.account_id
        ),
        started=started,
    )
    try:
        call.deadline = _deadline(request, settings)
        call.endpoint = endpoint
        call.transcript = transcript
        routes = call.routes()
        if parsed.stream:
            opened = await routing.first_success(
                [r.attempt for r in routes],
                lambda a: open_stream(a, call),
                max_attempts=settings.upstream_max_attempts,
            )
            return Relay(call, *opened)
        answer = await routing.first_success(
            [r.attempt for r in routes],
            lambda a: _fetch(a, call),
            max_attempts=settings.upstream_max_attempts,
        )
        return await _answer(call, answer)
    except BaseException as exc:
        call.fail(exc)
        raise


def _attempts(
    caller: Caller, parsed: CompletionRequest, settings: config.Settings
) -> list[routing.Attempt]:
    """The offers to try, in order, for the models the key may use.

    Raises:
        ModelNotFound, NoProviderAvailable, InvalidRequest: nothing can serve it as asked.
    """
    # The account's own provider keys (bring-your-own-key) replace ours for their providers.
    upstreams = providers.available(settings, provider_keys.own_keys(caller))
    served = catalog.models(upstreams)
    # `model` first, then the `models` fallbacks: any one that exists, makes text and the
    # key may use serves (OpenRouter's rule); the error is about `model` only when none does.
    wanted = [
        served[m]
        for m in parsed.models
        if m in served and not served[m].embeds and not served[m].draws and _allowed(caller, m)
    ]
    if not wanted:
        if parsed.model not in served:
            raise errors.ModelNotFound(
                f"The model `{errors.quote(parsed.model)}` does not exist.", param="model"
            )
        if served[parsed.model].embeds:
            raise errors.InvalidRequest(
                f"The model `{parsed.model}` makes embeddings: use POST /v1/embeddings.",
                param="model",
            )
        if served[parsed.model].draws:
            raise errors.InvalidRequest(
                f"The model `{parsed.model}` makes images: use POST /v1/images/generations.",
                param="model",
            )
        policy.require_model(caller, parsed.model)  # raises: the key may not use it
    prefs = routing.Preferences.parse(parsed.body.get("provider"))
    if prefs.require_parameters:
        wanted = parameters.supporting(wanted, parsed.body)
    attempts = routing.plan(wanted, prefs, upstreams)
    if not attempts:
        raise routing.no_attempts(wanted, prefs, upstreams)
    return attempts


def _budget(
    attempts: list[routing.Attempt], parsed: CompletionRequest, settings: config.Settings
) -> budget.Budget:
    """What each offer may cost, and the hold that covers the dearest.

    Raises:
        InvalidRequest, ContextLengthExceeded: no offer can serve the prompt as asked.
    """
    return budget.plan(
        fees.priced_attempts(attempts, parsed.features),
        parsed,
        byok_percent=settings.byok_fee_percent,
    )


def _parse(raw: bytes, *, chat: bool) -> CompletionRequest:
    """The body, validated and measured.

    Raises:
        InvalidRequest: not a valid request (`param` names the field).
    """
    try:
        return chat_request.parse(jsonbody.loads(raw), chat=chat)
    except RecursionError:  # measuring a body nested almost as deep as the parser allows
        raise errors.InvalidJSON("Request body is nested too deeply.") from None


def _deadline(request: Request, settings: config.Settings) -> float:
    """When a stream must end itself (time.monotonic()): before the Lambda invocation's
    deadline, and before its hold expires, by the configured margin."""
    margin = settings.stream_deadline_margin_s
    end = time.monotonic() + settings.hold_ttl_s - margin
    lambda_end = http.lambda_deadline(request.scope)
    if lambda_end is not None:
        end = min(end, time.monotonic() + (lambda_end - time.time()) - margin)
    return end


def _first_allowed(caller: Caller, parsed: CompletionRequest) -> str:
    """The first model asked for (`model`, then `models`) the key may use.

    Raises:
        ModelNotAllowed: about `model`, when the key may use none of them.
    """
    for model in parsed.models:
        if _allowed(caller, model):
            return model
    policy.require_model(caller, parsed.model)  # raises: the key may use none of them
    return parsed.model


def _allowed(caller: Caller, model: str) -> bool:
    try:
        policy.require_model(caller, model)
    except errors.ModelNotAllowed:
        return False
    return True


def _refused(
    reason: str, parsed: CompletionRequest, max_nanos: int, account_id: str
) -> errors.GatewayError:
    if reason in ("concurrency", "key_concurrency"):
        return errors.RateLimited(
            "Too many requests in flight for this "
            + ("key." if reason == "key_concurrency" else "account."),
            metadata={"limit": "concurrent_requests"},
            headers={"retry-after": "1"},
        )
    if reason == "account_inactive":
        return errors.AccountInactive("This account is not active.")
    if reason == "spend_limit":  # the account's monthly limit: a lack of credits to pay
        return errors.InsufficientCredits(
            spend_limit.reached_message(account_id),
            metadata={"limit_source": "credits", "limit": "monthly_spend_limit"},
        )
    dollars = max_nanos / 1e9
    # `max_tokens` is mentioned only to a client that set it: others cannot lower it.
    if parsed.max_output_param is not None:
        credits_message = (
            f"Insufficient credits: up to {parsed.max_output_tokens} output tokens may cost "
            f"${dollars:.6f}. Add credits or lower {parsed.max_output_param}."
        )
    else:
        credits_message = (
            f"Insufficient credits: this request may cost ${dollars:.6f}. Add credits."
        )
    message = {
        "credits": credits_message,
        "key_limit": "This API key has reached its spending limit.",
        "in_flight": "Credits are held by requests in flight; retry when they finish.",
    }.get(reason, "Insufficient credits.")
    return errors.InsufficientCredits(message, metadata={"limit_source": reason})


@record
class _Answer:
    attempt: routing.Attempt
    payload: dict[str, Any]


async def _fetch(attempt: routing.Attempt, call: Call) -> _Answer:
    """One non-streamed attempt: the whole answer, or a retryable failure."""
    body = call.begin(attempt)
    path = "/chat/completions" if call.request.chat else "/completions"
    payload = await routing.post_json(attempt, path, body, limits=limits())
    if not isinstance(payload, dict) or "error" in payload:
        raise routing.Retryable("the answer is an error")
    return _Answer(attempt, payload)


async def _answer(call: Call, answer: _Answer) -> Response:
    payload = answer_shape.shape(answer.payload, answer.attempt.offer.model_id)
    call.first_token = time.perf_counter()
    call.upstream_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    reported = payload.get("usage")
    usage = pricing.Usage.from_openai(reported)
    choices = payload.get("choices")
    choices = [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []
    finish = choices[0].get("finish_reason") if choices else None
    if call.transcript is not None:
        call.transcript.answered(choices)
    estimated = not isinstance(reported, dict)
    if estimated:
        meter = OutputMeter()
        for choice in choices:
            meter.choice(choice)
        usage = call.estimated_usage(meter)
    cost = await call.settle(usage, status=200, finish_reason=finish, estimated=estimated)
    payload["usage"] = {
        **(reported if isinstance(reported, dict) else {**_openai_usage(usage), "estimated": True}),
        **call.usage_costs(usage, cost),
    }
    payload["provider"] = answer.attempt.upstream.name
    return _json_response(payload)


def _json_response(payload: dict[str, Any]) -> Response:
    """The answer as JSON; what the provider wrote passes on as written, even an unpaired
    surrogate (kept as its escape)."""
    from starlette.responses import Response

    return Response(fastjson.dumps(payload), media_type="application/json")


def _openai_usage(usage: pricing.Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def refusal(
    reason: str, parsed: CompletionRequest, max_nanos: int, account_id: str
) -> errors.GatewayError:
    """The error for a hold `reserve` refused (the embeddings path answers alike)."""
    return _refused(reason, parsed, max_nanos, account_id)
