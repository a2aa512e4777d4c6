"""The chat path (DESIGN §3), one call per step: authenticate, check policy, rate limit,
price, reserve, call the provider, answer, settle.

`complete()` serves `/v1/chat/completions` and `/v1/completions`, streamed or not. From
the moment credits are held until the request is settled, every way out (an answer, an
error, a crash in between) goes through `Call.settle`, so nothing is charged without a
usage record and nothing is recorded without its charge.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gatewayz import errors

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from gatewayz.auth import Caller
    from gatewayz.chat_request import CompletionRequest
    from gatewayz.credits import Hold
    from gatewayz.pricing import Usage
    from gatewayz.ratelimit.limiter import Admission
    from gatewayz.routing import Attempt
    from gatewayz.upstream import Limits

MIN_OUTPUT_TOKENS = 16  # below this much output, a request is refused rather than cut short


async def complete(request: Request, *, chat: bool) -> Response:
    """Serve one completion request.

    Raises:
        GatewayError: any refusal before the answer began (the envelope of DESIGN §7).
    """
    from gatewayz import access, catalog, chat_request, config, credits, providers, routing
    from gatewayz.ratelimit import get_store, limiter

    started = time.perf_counter()
    parsed = chat_request.parse(await _json(request), chat=chat)
    caller = access.authorize(request, ("chat",), model=parsed.model)

    settings = config.get_settings()
    upstreams = providers.available(settings)
    served = catalog.models(upstreams)
    wanted = [m for m in parsed.models if m in served and _allowed(caller, m)]
    if parsed.model not in served:
        raise errors.ModelNotFound(f"The model `{parsed.model}` does not exist.", param="model")
    attempts = routing.plan(
        [served[m] for m in wanted],
        routing.Preferences.parse(parsed.body.get("provider")),
        upstreams,
    )
    if not attempts:
        raise errors.NoProviderAvailable(
            f"No provider can serve `{parsed.model}` with these provider preferences."
        )

    output_tokens, max_nanos, min_nanos = _budget(attempts, parsed)
    state = request.state
    admission = limiter.admit(get_store(), caller, parsed.prompt_tokens + parsed.n * output_tokens)
    state.response_headers.update(admission.headers)
    # access: a change to the key announced since it was cached applies now; a refusal
    # from here to the hold gives the rate-limit counts back (DESIGN §3 steps 1 and 5).
    caller = access.reauthorize(request, caller, admission, ("chat",), model=parsed.model)
    outcome = credits.reserve(
        account_id=caller.account_id,
        api_key_id=caller.key_id,
        request_id=state.request_id,
        max_nanos=max_nanos,
        min_nanos=min_nanos,
        ttl_s=settings.hold_ttl_s,
        concurrency=caller.limits.concurrent_requests,
        key_concurrency=caller.limits.key_concurrent_requests,
    )
    if isinstance(outcome, credits.Refusal):
        limiter.release(get_store(), admission)  # access: a refusal costs no rate-limit count
        raise _refused(outcome.reason, parsed, max_nanos)
    body = _fit_to_hold(parsed, attempts, outcome.amount_nanos, output_tokens)
    call = Call(caller, parsed, outcome, admission, started, state.request_id)
    try:
        if parsed.stream:
            from gatewayz.relay import Relay, open_stream

            opened = await routing.first_success(
                attempts,
                lambda a: open_stream(a, body, call),
                max_attempts=settings.upstream_max_attempts,
            )
            return Relay(call, *opened)
        answer = await routing.first_success(
            attempts, lambda a: _fetch(a, body, call), max_attempts=settings.upstream_max_attempts
        )
        return _answer(call, answer)
    except BaseException as exc:
        call.fail(exc)
        raise


@dataclass
class Call:
    """A request holding credits: what settling it needs to know."""

    caller: Caller
    request: CompletionRequest
    hold: Hold
    admission: Admission
    started: float
    request_id: str
    attempt: Attempt | None = None
    upstream_started: float | None = None
    first_token: float | None = None
    upstream_id: str | None = None
    settled: bool = field(default=False)

    def settle(
        self,
        usage: Usage,
        *,
        status: int,
        finish_reason: str | None = None,
        error_code: str | None = None,
        estimated: bool = False,
    ) -> int:
        """Charge `usage` at the attempt's price (nothing without an attempt); return the
        cost in nanos. Only the first settlement of a call counts."""
        if self.settled:
            return 0
        self.settled = True
        from gatewayz import credits, metrics, pricing
        from gatewayz.ratelimit import limiter

        cost = pricing.cost_nanos(self.attempt.offer.price, usage) if self.attempt else 0
        now = time.perf_counter()
        record = credits.UsageRecord(
            endpoint="chat.completions" if self.request.chat else "completions",
            model=self.attempt.offer.model_id if self.attempt else self.request.model,
            status=status,
            cost_nanos=cost,
            provider=self.attempt.upstream.name if self.attempt else None,
            provider_model=self.attempt.offer.provider_model_id if self.attempt else None,
            upstream_id=self.upstream_id,
            usage=usage,
            latency_ms=_ms(now - self.started),
            upstream_latency_ms=_ms(now - self.upstream_started) if self.upstream_started else None,
            ttft_ms=_ms(self.first_token - self.started) if self.first_token else None,
            finish_reason=finish_reason,
            error_code=error_code,
            streamed=self.request.stream,
            usage_estimated=estimated,
        )
        credits.settle(self.hold, record)
        limiter.correct(self.caller, self.admission, usage.prompt_tokens + usage.completion_tokens)
        metrics.record(record, total_s=now - self.started, upstream_started=self.upstream_started)
        return cost

    def estimated_usage(self, output_bytes: int) -> Usage:
        """Usage when the provider reported none: about 4 bytes a token (recorded as
        estimated), so delivered output is never free."""
        from gatewayz.pricing import Usage

        return Usage(
            input_tokens=max(1, self.request.prompt_tokens // 4), output_tokens=output_bytes // 4
        )

    def fail(self, exc: BaseException) -> None:
        """Settle a request that got no answer: nothing is charged, the failure is recorded."""
        from gatewayz.pricing import Usage

        status = exc.status if isinstance(exc, errors.GatewayError) else 500
        code = exc.code if isinstance(exc, errors.GatewayError) else "internal_error"
        try:
            self.settle(Usage(), status=status, error_code=code)
        except Exception:  # noqa: BLE001 - keep the original error; the sweeper returns the hold
            from gatewayz.logs import get_logger

            get_logger().exception("releasing a failed request's hold failed")


def _allowed(caller: Caller, model: str) -> bool:
    from gatewayz import policy

    try:
        policy.require_model(caller, model)
    except errors.ModelNotAllowed:
        return False
    return True


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise errors.InvalidJSON(f"Request body is not valid JSON: {exc}.") from None


def _budget(attempts: list[Attempt], parsed: CompletionRequest) -> tuple[int, int, int]:
    """(output tokens planned per choice, most to hold, least to accept), priced at the
    dearest offer that may serve, so a fallback never costs more than the hold."""
    from gatewayz.pricing import hold_nanos

    first = attempts[0]
    if parsed.max_output_tokens is not None:
        output = parsed.max_output_tokens
    else:
        room = first.model.context_length - parsed.prompt_tokens
        cap = first.offer.max_output_tokens or first.model.max_output_tokens
        output = max(1, min(cap, room) if cap else room)
    prices = [a.offer.price for a in attempts]
    max_nanos = max(hold_nanos(p, parsed.prompt_tokens, parsed.n * output) for p in prices)
    if parsed.max_output_tokens is not None:
        return output, max_nanos, max_nanos  # what was asked for, or nothing
    least = parsed.n * min(MIN_OUTPUT_TOKENS, output)
    return output, max_nanos, max(hold_nanos(p, parsed.prompt_tokens, least) for p in prices)


def _fit_to_hold(
    parsed: CompletionRequest, attempts: list[Attempt], held: int, planned: int
) -> dict[str, Any]:
    """The body to send: as the client sent it, with `max_tokens` lowered to what the
    hold pays for when the balance could not cover the model's default output."""
    from gatewayz.pricing import max_tokens_affordable

    if parsed.max_output_tokens is not None:
        return parsed.body
    affordable = min(
        max_tokens_affordable(a.offer.price, held, parsed.prompt_tokens) for a in attempts
    )
    per_choice = affordable // parsed.n
    if per_choice >= planned:
        return parsed.body
    return {**parsed.body, "max_tokens": max(1, per_choice)}


def _refused(reason: str, parsed: CompletionRequest, max_nanos: int) -> errors.GatewayError:
    if reason in ("concurrency", "key_concurrency"):
        return errors.RateLimited(
            "Too many requests in flight for this "
            + ("key." if reason == "key_concurrency" else "account."),
            metadata={"limit": "concurrent_requests"},
            headers={"retry-after": "1"},
        )
    if reason == "account_inactive":
        return errors.AccountInactive("This account is not active.")
    dollars = max_nanos / 1e9
    what = (
        f"up to {parsed.max_output_tokens} output tokens"
        if parsed.max_output_tokens is not None
        else "this request"
    )
    message = {
        "credits": f"Insufficient credits: {what} may cost ${dollars:.6f}. "
        "Add credits or lower max_tokens.",
        "key_limit": "This API key has reached its spending limit.",
        "in_flight": "Credits are held by requests in flight; retry when they finish.",
    }.get(reason, "Insufficient credits.")
    return errors.InsufficientCredits(message, metadata={"limit_source": reason})


@dataclass(frozen=True, slots=True)
class _Answer:
    attempt: Attempt
    payload: dict[str, Any]


async def _fetch(attempt: Attempt, body: dict[str, Any], call: Call) -> _Answer:
    """One non-streamed attempt: the whole answer, or a retryable failure."""
    from gatewayz import routing, upstream

    call.attempt, call.upstream_started = attempt, time.perf_counter()
    path = "/chat/completions" if call.request.chat else "/completions"
    reply = await routing.open_response(attempt, path, body, stream=False, limits=limits())
    try:
        raw = await reply.read()
    except upstream.Timeout:
        raise routing.Retryable("timeout reading the answer", timeout=True) from None
    except upstream.Broken as exc:
        raise routing.Retryable(f"reading the answer: {exc}") from None
    finally:
        await reply.close()
    try:
        payload = json.loads(raw)
    except ValueError:
        raise routing.Retryable("the answer is not JSON") from None
    if not isinstance(payload, dict) or "error" in payload:
        raise routing.Retryable("the answer is an error")
    return _Answer(attempt, payload)


def _answer(call: Call, answer: _Answer) -> Response:
    from starlette.responses import JSONResponse

    from gatewayz.pricing import Usage

    payload = answer.payload
    call.first_token = time.perf_counter()
    call.upstream_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    reported = payload.get("usage")
    usage = Usage.from_openai(reported)
    choices = payload.get("choices") or [{}]
    finish = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
    estimated = not isinstance(reported, dict)
    if estimated:
        usage = call.estimated_usage(len(json.dumps(choices).encode()))
    cost = call.settle(usage, status=200, finish_reason=finish, estimated=estimated)
    payload["usage"] = {
        **(reported if isinstance(reported, dict) else _openai_usage(usage)),
        "cost": cost / 1e9,
    }
    payload["provider"] = answer.attempt.upstream.name
    return JSONResponse(payload)


def _openai_usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def limits() -> Limits:
    """Per attempt: how long to connect, and how long the provider may stay silent."""
    from gatewayz.config import get_settings
    from gatewayz.upstream import Limits

    settings = get_settings()
    return Limits(connect_s=settings.upstream_connect_timeout_s, read_s=settings.upstream_timeout_s)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
