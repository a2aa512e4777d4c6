"""Per-request CloudWatch embedded metrics."""

from __future__ import annotations

import json

import pytest

from gatewayz import metrics
from gatewayz.billing import credits
from gatewayz.billing.pricing import Usage


def test_one_emf_line_per_request_with_overhead_and_cost(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAYZ_METRICS", raising=False)
    record = credits.UsageRecord(
        endpoint="chat.completions", model="test/echo", status=200, cost_nanos=13_000,
        provider="openrouter", usage=Usage(input_tokens=7, output_tokens=3),
        upstream_latency_ms=40, ttft_ms=12, streamed=True,
    )  # fmt: skip
    metrics.record(record, total_s=0.0415, upstream_started=1.0)
    (line,) = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Gatewayz"
    assert set(directive["Dimensions"][0]) >= {"provider", "status"}
    assert line["provider"] == "openrouter"
    assert line["Tokens"] == 10
    assert line["CostNanos"] == 13_000
    assert line["GatewayOverhead"] == pytest.approx(1.5)
    assert line["Latency"] == pytest.approx(41.5)
    assert line["model"] == "test/echo"
    # Every declared metric has its value in the line, and nothing else is declared.
    declared = {metric["Name"] for metric in directive["Metrics"]}
    assert declared == {"Requests", "Latency", "GatewayOverhead", "TimeToFirstToken", "Tokens",
                        "CostNanos", "UncollectedNanos"}  # fmt: skip
    assert all(isinstance(line[name], int | float) for name in declared)
    assert line["_aws"]["Timestamp"] > 1_700_000_000_000  # milliseconds since the epoch


def test_a_request_without_an_upstream_declares_no_overhead_or_first_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAYZ_METRICS", raising=False)
    record = credits.UsageRecord(endpoint="chat.completions", model="m", status=502)
    metrics.record(record, total_s=0.002, upstream_started=None, uncollected_nanos=0)
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    declared = {metric["Name"] for metric in directive["Metrics"]}
    assert "GatewayOverhead" not in declared
    assert "TimeToFirstToken" not in declared
    assert "GatewayOverhead" not in line
    assert line["UncollectedNanos"] == 0
    assert (line["provider"], line["status"]) == ("none", "502")


def test_metrics_can_be_turned_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAYZ_METRICS", "off")
    metrics.record(
        credits.UsageRecord(endpoint="x", model="m", status=200), total_s=0.1, upstream_started=None
    )
    assert capsys.readouterr().out == ""


def test_an_event_is_counted_in_the_namespace_unless_metrics_are_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAYZ_METRICS", raising=False)
    metrics.count("RateLimitStoreUnavailable")
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Gatewayz"
    assert line["RateLimitStoreUnavailable"] == 1
    monkeypatch.setenv("GATEWAYZ_METRICS", "off")
    metrics.count("RateLimitStoreUnavailable")
    assert capsys.readouterr().out == ""
