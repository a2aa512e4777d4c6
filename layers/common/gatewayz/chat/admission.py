"""Steps 3 and 5 of a billed request (docs/architecture.md): count it against the rate
limits and hold its credits, at the same time, then apply a change to the key announced
since it was cached. Chat completions, responses, embeddings and images all go through
`reserve`.

The two calls are independent, so they overlap: the credit hold is sent to PostgreSQL
(`adb.start`: the statement is on its way when it returns), then the rate-limit call to
its store while the hold runs (`limiter.begin_admit`; Redis: the command is written, its
reply worked out by the event loop when it arrives, inside the hold's wait; Upstash REST:
a worker thread); the request awaits the hold (the event loop serves other requests
meanwhile), then takes the rate limit's answer, which came first. No thread hop on
Redis, a warm key waits for one round trip before the upstream call, not two, and
neither packing the rate-limit call nor reading its answer costs it time. Whatever one side refuses,
the other side's work is given back at once: a refused request costs the client neither
a rate-limit count nor a held credit. When both refuse, the rate limit's 429 (or the
store's 503) is the answer, as when the limiter ran first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz import adb, config
from gatewayz.billing import credits
from gatewayz.chat.call import Call
from gatewayz.identity import access
from gatewayz.logs import get_logger
from gatewayz.ratelimit import get_store, limiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from gatewayz.chat.budget import Budget
    from gatewayz.chat.request import CompletionRequest
    from gatewayz.db import Query
    from gatewayz.errors import GatewayError
    from gatewayz.identity.auth import Caller
    from gatewayz.ratelimit import Store
    from gatewayz.ratelimit.limiter import Admission

Outcome = credits.Hold | credits.Refusal


async def reserve(
    request: Request,
    caller: Caller,
    plan: Budget,
    as_completion: CompletionRequest,
    *,
    scopes: tuple[str, ...],
    model: str,
    replan: Callable[[Caller], Budget],
    refuse: Callable[[credits.Refusal, Budget, Caller], GatewayError],
    started: float,
) -> Call:
    """The request admitted and its credits held, as a `Call` that must settle.

    `replan` plans again for the caller as the database has it now (its allowlists may
    have changed); `refuse` is the error for a hold `reserve_credits` refused.

    Raises:
        RateLimited: a rate limit is reached (before any refusal of the hold).
        ServiceUnavailable: the store is down and `RATE_LIMIT_FAILURE=closed`.
        what `access.reauthorize` and `refuse` raise.
    """
    state = request.state
    settings = config.get_settings()
    store = get_store()
    # The hold's statement goes first; the rate-limit call is packed and sent while
    # PostgreSQL runs it, and its answer (quicker than the hold's) is read after.
    holding = adb.start(hold(caller, plan, state.request_id, settings))
    counting = limiter.begin_admit(store, caller, plan.tokens)  # a store's failure: when read
    try:
        outcome = await holding
    except BaseException:
        _undo(store, counting)
        raise
    try:
        admission = counting()
    except BaseException:  # the 429 (or 503) comes first, even over a refused hold
        _give_back(outcome)
        raise
    state.response_headers.update(admission.headers)
    try:
        # A change to the key announced since it was cached applies now. The hold was
        # taken for the caller as cached, maybe before the change committed: a caller
        # still allowed is planned and held again as it is now, in one round trip.
        fresh = access.reauthorize(request, caller, admission, scopes, model=model)
        if fresh is not caller:
            caller, plan = fresh, replan(fresh)
            old = outcome if isinstance(outcome, credits.Hold) else None
            outcome = await adb.run(hold(caller, plan, state.request_id, settings, replacing=old))
        if isinstance(outcome, credits.Refusal):
            raise refuse(outcome, plan, caller)
    except BaseException:
        limiter.release(store, admission)  # a refusal costs no rate-limit count
        _give_back(outcome)
        raise
    return Call(caller, as_completion, plan, outcome, admission, started, state.request_id)


def hold(
    caller: Caller,
    plan: Budget,
    request_id: str,
    settings: config.Settings,
    *,
    replacing: credits.Hold | None = None,
) -> Query[Outcome]:
    """The statement reserving what `plan` may cost, within the account's and the key's
    in-flight limits: the one hold every billed route (completions, responses,
    embeddings, images) takes. `replacing`: the request's hold taken for its key as
    cached, given back meanwhile."""
    return credits.reserve(
        account_id=caller.account_id,
        api_key_id=caller.key_id,
        request_id=request_id,
        max_nanos=plan.max_nanos,
        min_nanos=plan.min_nanos,
        ttl_s=settings.hold_ttl_s,
        concurrency=caller.limits.concurrent_requests,
        key_concurrency=caller.limits.key_concurrent_requests,
        replacing=replacing,
    )


def _undo(store: Store, counting: Callable[[], Admission]) -> None:
    """Wait for a `limiter.begin_admit` call and give back whatever it counted: the hold
    failed. Never raises (a refusal or an outage counted nothing)."""
    try:
        admission = counting()
    except Exception:  # noqa: BLE001 - a refusal or an outage counted nothing
        return
    limiter.release(store, admission)


def _give_back(outcome: Outcome) -> None:
    """Return a hold whose request will not be served. Never raises: the original error
    is the answer, and a hold this could not return expires into the sweeper's hands."""
    if not isinstance(outcome, credits.Hold):
        return
    try:
        credits.release(outcome)
    except Exception:  # noqa: BLE001 - keep the original error; the sweeper returns the hold
        get_logger().exception("returning a refused request's hold failed")
