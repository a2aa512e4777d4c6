"""Per-request metrics (docs/operations.md) as CloudWatch embedded metric format (EMF) log
lines: latency, gateway overhead (total minus the time spent waiting on the provider),
tokens, cost and status, by provider; and counts of events an operator must see
(`count`), such as a request let through unlimited because the rate-limit store was down.

The line is written here, not through Powertools' `EphemeralMetrics`: that builds and
validates a metric set against the EMF JSON schema for every line, about 130 µs a
request on the chat path, where this line costs about a tenth of that. The format is
small and fixed (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html): the names and units below are the
only ones ever written, so nothing here needs validating at run time.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gatewayz.billing.credits import UsageRecord

NAMESPACE = "Gatewayz"

# The per-request metrics and their units, in the order they are declared.
_REQUEST_METRICS = (
    ("Requests", "Count"),
    ("Latency", "Milliseconds"),
    ("GatewayOverhead", "Milliseconds"),
    ("TimeToFirstToken", "Milliseconds"),
    ("Tokens", "Count"),
    ("CostNanos", "Count"),
    ("UncollectedNanos", "Count"),
)


def _enabled() -> bool:
    return os.environ.get("GATEWAYZ_METRICS", "on") != "off"


def count(name: str, *, service: str = "chat") -> None:
    """Emit one EMF line counting one `name` event (a no-op with `GATEWAYZ_METRICS=off`)."""
    if not _enabled():
        return
    _emit({"service": service}, {name: ("Count", 1)}, {})


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
    total_ms = total_s * 1000
    values: dict[str, float | int | None] = {
        "Requests": 1,
        "Latency": total_ms,
        "GatewayOverhead": None
        if usage.upstream_latency_ms is None
        else max(0.0, total_ms - usage.upstream_latency_ms),
        "TimeToFirstToken": usage.ttft_ms,
        "Tokens": usage.usage.prompt_tokens + usage.usage.completion_tokens,
        "CostNanos": usage.cost_nanos,
        "UncollectedNanos": uncollected_nanos,
    }
    measured = {
        name: (unit, values[name]) for name, unit in _REQUEST_METRICS if values[name] is not None
    }
    dimensions = {
        "provider": usage.provider or "none",
        "status": str(usage.status),
        "service": "chat",
    }
    _emit(dimensions, measured, {"model": usage.model, "streamed": usage.streamed})


def _emit(
    dimensions: dict[str, str], measured: dict[str, tuple[str, Any]], metadata: dict[str, Any]
) -> None:
    """Write one EMF line to stdout, which Lambda sends to CloudWatch Logs."""
    head = _head(tuple(dimensions), tuple((name, unit) for name, (unit, _) in measured.items()))
    members = {**dimensions, **metadata, **{name: value for name, (_, value) in measured.items()}}
    body = json.dumps(members, separators=(",", ":"))
    sys.stdout.write(f'{{"_aws":{{"Timestamp":{int(time.time() * 1000)},{head}]}},{body[1:]}\n')


@functools.cache
def _head(dimensions: tuple[str, ...], metrics: tuple[tuple[str, str], ...]) -> str:
    """The directive naming the namespace, dimensions and metrics: the same few per
    process, so serialised once each."""
    directive = {
        "Namespace": NAMESPACE,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics],
    }
    return '"CloudWatchMetrics":[' + json.dumps(directive, separators=(",", ":"))
