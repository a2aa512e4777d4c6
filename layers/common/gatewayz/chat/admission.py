"""Steps 3 and 5 of a billed request (docs/architecture.md): count it against the rate
limits, apply a change to the key announced since it was cached, then hold its credits.

Any refusal in between gives the rate-limit counts back at once, so a refused request
costs the client nothing. Embeddings and images go through `reserve`; chat completions
take the same steps with their own output-cap checks in gatewayz/chat/completions.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz import config
from gatewayz.billing import credits
from gatewayz.chat import completions
from gatewayz.chat.call import Call
from gatewayz.identity import access
from gatewayz.ratelimit import get_store, limiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from gatewayz.chat.budget import Budget
    from gatewayz.chat.request import CompletionRequest
    from gatewayz.errors import GatewayError
    from gatewayz.identity.auth import Caller


def reserve(
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
        RateLimited: a rate limit is reached.
        what `access.reauthorize` and `refuse` raise.
    """
    state = request.state
    admission = limiter.admit(get_store(), caller, plan.tokens)
    state.response_headers.update(admission.headers)
    fresh = access.reauthorize(request, caller, admission, scopes, model=model)
    try:
        if fresh is not caller:
            caller, plan = fresh, replan(fresh)
        outcome = completions.hold(caller, plan, state.request_id, config.get_settings())
        if isinstance(outcome, credits.Refusal):
            raise refuse(outcome, plan, caller)
    except BaseException:
        limiter.release(get_store(), admission)  # a refusal costs no rate-limit count
        raise
    return Call(caller, as_completion, plan, outcome, admission, started, state.request_id)
