"""Per-request metrics (docs/operations.md) as CloudWatch embedded metric format (EMF) log
lines through aws-lambda-powertools: latency, gateway overhead (total minus the time
spent waiting on the provider), tokens, cost and status, by provider; and counts of
events an operator must see (`count`), such as a request let through unlimited because
the rate-limit store was down.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatewayz.billing.credits import UsageRecord

NAMESPACE = "Gatewayz"


def _enabled() -> bool:
    return os.environ.get("GATEWAYZ_METRICS", "on") != "off"


def count(name: str, *, service: str = "chat") -> None:
    """Emit one EMF line counting one `name` event (a no-op with `GATEWAYZ_METRICS=off`)."""
    if not _enabled():
        return
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics(namespace=NAMESPACE, service=service)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


def record(
    usage: UsageRecord,
    *,
    total_s: float,
    upstream_started: float | None,
    uncollected_nanos: int = 0,
) -> None:
    """Emit one EMF line for a settled request (a no-op with `GATEWAYZ_METRICS=off`).

    `UncollectedNanos` is cost the balance could not cover (a provider that ignored the
    output cap): it must stay 0, so it is always emitted, for an alarm to watch."""
    if not _enabled():
        return
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics(namespace=NAMESPACE, service="chat")
    metrics.add_dimension(name="provider", value=usage.provider or "none")
    metrics.add_dimension(name="status", value=str(usage.status))
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=total_s * 1000)
    if usage.upstream_latency_ms is not None:
        overhead_ms = max(0.0, total_s * 1000 - usage.upstream_latency_ms)
        metrics.add_metric(name="GatewayOverhead", unit=MetricUnit.Milliseconds, value=overhead_ms)
    if usage.ttft_ms is not None:
        metrics.add_metric(
            name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=usage.ttft_ms
        )
    tokens = usage.usage.prompt_tokens + usage.usage.completion_tokens
    metrics.add_metric(name="Tokens", unit=MetricUnit.Count, value=tokens)
    metrics.add_metric(name="CostNanos", unit=MetricUnit.Count, value=usage.cost_nanos)
    metrics.add_metric(name="UncollectedNanos", unit=MetricUnit.Count, value=uncollected_nanos)
    metrics.add_metadata(key="model", value=usage.model)
    metrics.add_metadata(key="streamed", value=usage.streamed)
    metrics.flush_metrics()
