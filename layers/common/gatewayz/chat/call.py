"""A request holding credits (docs/architecture.md, steps 5-8): what it planned, what it holds, and
the one place it settles.

`Call.settle` charges usage at the price of the route the request took (nothing without
one), writes the usage record and the ledger entry, corrects the rate limiter's token
estimate and makes an uncollected cost visible. The chat path and the stream relay both
settle through it, so nothing is charged without a record and nothing is recorded
without its charge.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gatewayz import adb, config, db, errors, metrics
from gatewayz.billing import credits, pricing
from gatewayz.chat import budget, upstream
from gatewayz.chat import request as chat_request
from gatewayz.logs import get_logger
from gatewayz.ratelimit import limiter
from gatewayz.record import record

if TYPE_CHECKING:
    from gatewayz.billing.credits import Hold
    from gatewayz.chat import routing
    from gatewayz.chat.output_meter import OutputMeter
    from gatewayz.chat.request import CompletionRequest
    from gatewayz.db import Query
    from gatewayz.history.transcript import Transcript
    from gatewayz.identity.auth import Caller
    from gatewayz.ratelimit.limiter import Admission


@dataclass
class Call:
    """A request holding credits: what settling it needs to know."""

    caller: Caller
    request: CompletionRequest
    plan: budget.Budget
    hold: Hold
    admission: Admission
    started: float
    request_id: str
    route: budget.Route | None = None
    cap: int = 0  # the output cap sent on `route`
    deadline: float | None = None  # time.monotonic() by which a stream must end itself
    upstream_started: float | None = None
    first_token: float | None = None
    upstream_id: str | None = None
    settled: bool = field(default=False)
    endpoint: str | None = None  # the usage record's; None: the completion's kind
    # The session turn to save with the settlement (a request naming a chat session).
    transcript: Transcript | None = None

    def routes(self) -> list[budget.Route]:
        """The routes the hold pays for (every one, unless the balance bought less)."""
        return [r for r in self.plan.routes if self.plan.cap(r, self.hold.amount_nanos) is not None]

    def begin(self, attempt: routing.Attempt) -> dict[str, Any]:
        """Start `attempt`: the body to send it, with the output cap the hold covers."""
        route = next(r for r in self.plan.routes if r.attempt is attempt)
        cap = self.plan.cap(route, self.hold.amount_nanos)
        assert cap is not None
        self.route, self.cap, self.upstream_started = route, cap, time.perf_counter()
        # One cap, in the field this provider reads, whichever the client used.
        body = {k: v for k, v in self.request.body.items() if k not in chat_request.CAP_FIELDS}
        body[attempt.upstream.provider.cap_field(chat=self.request.chat)] = cap
        reasoning = body.get("reasoning")
        budget_tokens = reasoning.get("max_tokens") if isinstance(reasoning, dict) else None
        if isinstance(budget_tokens, int) and budget_tokens >= cap:
            # A reasoning budget at or above the cap makes OpenRouter raise the cap to fit
            # it: the budget stays under the cap the hold paid for.
            body["reasoning"] = {**reasoning, "max_tokens": cap - 1}  # type: ignore[dict-item]
        return body

    def record(self, usage: pricing.Usage, **fields: Any) -> credits.UsageRecord:
        """The usage record of `usage` on the current route (nothing without one)."""
        route = self.route
        cost = fee = 0
        upstream_cost = None
        if route is not None:
            fees = fields.get("status") == 200
            catalog = route.catalog_nanos(usage, fees=fees)
            cost = route.charge_nanos(catalog)
            if route.byok_percent is None:
                fee = route.fee_nanos if fees else 0
            else:  # the provider bills the account's key for tokens and features alike
                upstream_cost = catalog
        return credits.UsageRecord(
            endpoint=self.endpoint or ("chat.completions" if self.request.chat else "completions"),
            model=route.attempt.offer.model_id if route else self.request.model,
            cost_nanos=cost,
            fee_nanos=fee,
            provider=route.attempt.upstream.name if route else None,
            provider_model=route.attempt.offer.provider_model_id if route else None,
            upstream_id=self.upstream_id,
            usage=usage,
            streamed=self.request.stream,
            upstream_cost_nanos=upstream_cost,
            **fields,
        )

    def usage_costs(self, usage: pricing.Usage, charged_nanos: int | None = None) -> dict[str, Any]:
        """The fields the answer's `usage` gets: `cost`, what was charged in USD (by
        default what `usage` costs on the route), and, when the account's own provider key
        served it, OpenRouter's `is_byok` and `cost_details` (`upstream_inference_cost`:
        what the provider bills that key, at the catalog's price; `byok_fee`: ours)."""
        route = self.route
        assert route is not None
        catalog = route.catalog_nanos(usage)
        charged = route.charge_nanos(catalog) if charged_nanos is None else charged_nanos
        if route.byok_percent is None:
            return {"cost": charged / 1e9}
        return {
            "cost": charged / 1e9,
            "is_byok": True,
            "cost_details": {"upstream_inference_cost": catalog / 1e9, "byok_fee": charged / 1e9},
        }

    async def settle(
        self,
        usage: pricing.Usage,
        *,
        status: int,
        finish_reason: str | None = None,
        error_code: str | None = None,
        estimated: bool = False,
    ) -> int:
        """Charge `usage` at the route's price (nothing without a route); return what was
        charged in nanos. Only the first settlement of a call counts. Awaited: the event
        loop serves other requests meanwhile, and the statement runs to its end even if
        this request is cancelled (a client gone: the charge is still owed)."""
        pending = self._settling(usage, status, finish_reason, error_code, estimated)
        if pending is None:
            return 0
        return self._settled(pending, await asyncio.shield(adb.run(pending.query)))

    def settle_blocking(
        self,
        usage: pricing.Usage,
        *,
        status: int,
        finish_reason: str | None = None,
        error_code: str | None = None,
        estimated: bool = False,
    ) -> int:
        """`settle` on this thread's connection, for the ways out that must not await (an
        exception on its way up, a response's cleanup)."""
        pending = self._settling(usage, status, finish_reason, error_code, estimated)
        if pending is None:
            return 0
        return self._settled(pending, db.run(pending.query))

    def _settling(
        self,
        usage: pricing.Usage,
        status: int,
        finish_reason: str | None,
        error_code: str | None,
        estimated: bool,
    ) -> _Settling | None:
        """The settlement to run, or None when the call is settled already."""
        if self.settled:
            return None
        self.settled = True
        now = time.perf_counter()
        record = self.record(
            usage,
            status=status,
            latency_ms=_ms(now - self.started),
            upstream_latency_ms=_ms(now - self.upstream_started) if self.upstream_started else None,
            ttft_ms=_ms(self.first_token - self.started) if self.first_token else None,
            finish_reason=finish_reason,
            error_code=error_code,
            usage_estimated=estimated,
        )
        transcript = self.transcript if status == 200 and error_code is None else None
        # A session's new turn is saved by the settling statement itself (history/transcript.py).
        also = transcript.statement(record.model) if transcript is not None else None
        return _Settling(credits.settle(self.hold, record, also=also), record, now, transcript)

    def _settled(self, pending: _Settling, settlement: credits.Settlement) -> int:
        """What follows a settlement: the session's turn, the rate limiter's correction,
        the metrics; what was charged."""
        record, now = pending.record, pending.made
        usage = record.usage
        if pending.transcript is not None:
            pending.transcript.saved(settlement.also)
        limiter.correct(self.caller, self.admission, usage.prompt_tokens + usage.completion_tokens)
        if settlement.uncollected_nanos:
            # The provider produced more than the hold bounded and the balance ran out.
            get_logger().error(
                "uncollected cost",
                extra={
                    "request_id": self.request_id,
                    "provider": record.provider,
                    "model": record.model,
                    "uncollected_nanos": settlement.uncollected_nanos,
                    "held_nanos": self.hold.amount_nanos,
                    "cap": self.cap,
                },
            )
        metrics.record(
            record,
            total_s=now - self.started,
            upstream_started=self.upstream_started,
            uncollected_nanos=settlement.uncollected_nanos,
        )
        return settlement.charged_nanos

    def estimated_usage(self, meter: OutputMeter) -> pricing.Usage:
        """Usage when the provider reported none: a typical count of the prompt and the
        output delivered (recorded as estimated), so delivered output is never free."""
        prompt = self.route.typical_prompt_tokens if self.route else 0
        return pricing.Usage(input_tokens=prompt, output_tokens=meter.tokens)

    def fail(self, exc: BaseException) -> None:
        """Settle a request that got no answer: nothing is charged, the failure is recorded."""
        status = exc.status if isinstance(exc, errors.GatewayError) else 500
        code = exc.code if isinstance(exc, errors.GatewayError) else "internal_error"
        try:
            self.settle_blocking(pricing.Usage(), status=status, error_code=code)
        except Exception:  # noqa: BLE001 - keep the original error; the sweeper returns the hold
            get_logger().exception("releasing a failed request's hold failed")


@record
class _Settling:
    """A settlement's statement, and what follows it needs: the usage record, when it
    was made (perf_counter), and the session turn the statement saves."""

    query: Query[credits.Settlement]
    record: credits.UsageRecord
    made: float
    transcript: Transcript | None


def limits() -> upstream.Limits:
    """Per attempt: how long to connect, and how long the provider may stay silent."""
    settings = config.get_settings()
    return upstream.Limits(
        connect_s=settings.upstream_connect_timeout_s, read_s=settings.upstream_timeout_s
    )


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
