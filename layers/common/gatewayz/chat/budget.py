"""What a request may cost (docs/architecture.md, step 5): the credit hold, and the output cap each
attempt is sent with, so that the hold bounds what any provider tried can produce.

Each attempt (an offer of a model) plans its own output: the client's `max_tokens`, else
the offer's (or model's) output limit, never more than the context leaves after a
typical count of the prompt. The hold covers the dearest attempt: the prompt's upper
bound, every output at its cap (reasoning counted at the dearer rate), output billed
beyond the cap (rejected predictions), and the fees of the features asked for. When the
balance covers less, each attempt's cap is lowered to what the hold pays for at its own
price, and the request is refused below `MIN_OUTPUT_TOKENS` (or below an explicit
`max_tokens`: what was asked for, or nothing).

An attempt served with the account's own provider key (bring-your-own-key) costs the
account only `BYOK_FEE_PERCENT` of its catalog cost, rounded up: its hold is that share
of the catalog bound, and its cap is what that share of the hold pays for.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from gatewayz import errors
from gatewayz.billing.pricing import (
    Usage,
    before_percent_nanos,
    cost_nanos,
    hold_nanos,
    max_tokens_affordable,
    percent_nanos,
)
from gatewayz.record import record

if TYPE_CHECKING:
    from gatewayz.chat.request import CompletionRequest
    from gatewayz.chat.routing import Attempt

MIN_OUTPUT_TOKENS = 16  # below this much output, a request is refused rather than cut short
MAX_HOLD_NANOS = 2**62  # beyond any balance; keeps the SQL's bigint arithmetic safe


@record
class Route:
    """One attempt with what it may cost: its prompt bound, output cap and fee."""

    attempt: Attempt
    prompt_tokens: int  # upper bound, images at this model's rule
    typical_prompt_tokens: int  # the typical count, for estimates
    cap: int  # output tokens per completion, before the balance is considered
    fee_nanos: int
    # Served with the account's own key: the account pays this percentage of the catalog
    # cost (the provider bills the key the rest). None: the catalog cost.
    byok_percent: Decimal | None = None

    def catalog_nanos(self, usage: Usage, *, fees: bool = True) -> int:
        """What `usage` costs at the offer's price, with the fees of the features asked for."""
        fee = self.fee_nanos if fees else 0
        return cost_nanos(self.attempt.offer.price, usage) + fee

    def charge_nanos(self, catalog_nanos: int) -> int:
        """What the account pays for a request whose catalog cost is `catalog_nanos`."""
        if self.byok_percent is None:
            return catalog_nanos
        return percent_nanos(catalog_nanos, self.byok_percent)

    def covered_nanos(self, held_nanos: int) -> int:
        """The largest catalog cost that a hold of `held_nanos` pays for on this route."""
        if self.byok_percent is None:
            return held_nanos
        return before_percent_nanos(held_nanos, self.byok_percent)


@record
class Budget:
    """The hold to ask for and the least to accept, and each attempt's route."""

    routes: tuple[Route, ...]
    max_nanos: int
    min_nanos: int
    outputs: int
    extra_output_tokens: int
    explicit: bool  # the client set max_tokens: its output, or nothing

    @property
    def tokens(self) -> int:
        """The rate limiter's estimate: the typical prompt and every output at its cap."""
        first = self.routes[0]
        return first.typical_prompt_tokens + self.outputs * max(r.cap for r in self.routes)

    @property
    def least_tokens(self) -> int:
        """The fewest tokens this request could be counted at: the typical prompt and each
        output at the least accepted (all of an explicit `max_tokens`)."""
        return min(
            r.typical_prompt_tokens
            + self.outputs * (r.cap if self.explicit else min(MIN_OUTPUT_TOKENS, r.cap))
            for r in self.routes
        )

    def cap(self, route: Route, held_nanos: int) -> int | None:
        """The output cap to send on `route` when `held_nanos` is held; None when the hold
        cannot pay for this route's least output."""
        price = route.attempt.offer.price
        affordable = max_tokens_affordable(
            price, route.covered_nanos(held_nanos) - route.fee_nanos, route.prompt_tokens
        )
        per_output = (affordable - self.extra_output_tokens) // self.outputs
        cap = min(route.cap, per_output)
        least = route.cap if self.explicit else min(MIN_OUTPUT_TOKENS, route.cap)
        return cap if cap >= least else None


def plan(
    attempts: list[Attempt], request: CompletionRequest, *, byok_percent: Decimal = Decimal(100)
) -> Budget:
    """Each attempt's route and the hold that covers the dearest. An attempt with the
    account's own key costs `byok_percent` of its catalog cost (unless told, all of it:
    never free by accident).

    Raises:
        ContextLengthExceeded: even a typical count of the prompt fills every model's context.
        InvalidRequest: images sent to models that take none, or `max_tokens` above
            every model's output limit.
    """
    routes = []
    refusal: errors.InvalidRequest | None = None
    param = "messages" if request.chat else "prompt"
    for attempt in attempts:
        model, offer = attempt.model, attempt.offer
        if request.prompt.images and "image" not in model.input_modalities:
            refusal = refusal or errors.InvalidRequest(
                f"The model `{model.id}` does not take image input.", param=param
            )
            continue
        context = offer.context_length or model.context_length
        room = context - request.prompt.longest_with(model.max_image_tokens)
        if room < 1:
            refusal = refusal or errors.ContextLengthExceeded(
                f"This prompt does not fit `{model.id}`'s context of {context} tokens.",
                param=param,
            )
            continue
        limit = offer.max_output_tokens or model.max_output_tokens or context
        asked = request.max_output_tokens
        if asked is not None and asked > limit:
            # As OpenAI answers: a 400 naming the field, never a cap the client did not ask for.
            refusal = refusal or errors.InvalidRequest(
                f"`{request.max_output_param}` is too large: {asked}. `{model.id}` supports "
                f"at most {limit} output tokens.",
                param=request.max_output_param,
            )
            continue
        routes.append(
            Route(
                attempt=attempt,
                prompt_tokens=request.prompt.bound_with(model.max_image_tokens),
                typical_prompt_tokens=request.prompt.typical_with(model.max_image_tokens),
                cap=min(limit, room, request.max_output_tokens or limit),
                fee_nanos=offer.price.fee_nanos(request.features),
                byok_percent=byok_percent if attempt.upstream.own_key else None,
            )
        )
    if not routes:
        assert refusal is not None
        raise refusal
    explicit = request.max_output_tokens is not None
    extra = request.extra_output_tokens

    def hold(route: Route, cap: int) -> int:
        output = request.outputs * cap + extra
        held = hold_nanos(route.attempt.offer.price, route.prompt_tokens, output)
        return min(route.charge_nanos(held + route.fee_nanos), MAX_HOLD_NANOS)

    return Budget(
        routes=tuple(routes),
        max_nanos=max(hold(r, r.cap) for r in routes),
        min_nanos=max(
            hold(r, r.cap if explicit else min(MIN_OUTPUT_TOKENS, r.cap)) for r in routes
        ),
        outputs=request.outputs,
        extra_output_tokens=extra,
        explicit=explicit,
    )
