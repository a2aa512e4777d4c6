"""The Lambda cost model (bench/README.md): what one million chat requests cost on Lambda
plus API Gateway, per architecture and memory size, and the time to first token each
setting adds.

Inputs are measured, not guessed: the gateway's CPU time per request, the part of the
time to first token that is CPU, the store round trips before the upstream call and the
peak RSS come from a `bench/overhead.py --store-latency-ms 0,1` run on this machine
(defaults: the run of 2026-12-02 in bench/README.md; pass a new run's numbers as
arguments). Prices are Lambda's and API Gateway's published on-demand prices, first
tier, US East (N. Virginia), as read on 2026-12-02 (sources above `LAMBDA_REQUEST_USD`).

The model:

- CPU: Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB.
  Below that, CPU time stretches by 1769 / MB (a fair-share model: a burst shorter
  than the period may run at full speed, so this is the pessimistic reading). An arm64
  vCPU is taken to run this Python `--arm-speed` times as fast as this machine's core,
  an x86_64 one `--x86-speed` times (1.0: unknown, measure on Lambda).
- Duration billed = stretched CPU + store round trips x RTT + the stores' own time +
  the upstream's time. A stream's function is billed while the stream is open, so
  10 s of generation bills 10 s at the function's memory, whatever the gateway does.
- Added time to first token = store round trips before the upstream call x RTT + the
  stores' own time for them + the rest of the TTFT measured at RTT 0 (CPU), stretched.
  Budget: 2.5 ms at an RTT of 1 ms (issue 11).
- API Gateway (REST) charges per call; response streaming adds a charge only for the
  bytes of a response past its first 6 MB, and a chat answer is kilobytes.

Run: `.venv/bin/python bench/lambda_cost.py [--cpu-ms-completion 1.6 ...]`.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

VCPU_MB = 1769  # Lambda: one full vCPU at this memory size
MEMORY_SIZES = (256, 512, 1024)
ARCHITECTURES = ("arm64", "x86_64")
BUDGET_TTFT_MS = 2.5

# US East (N. Virginia), on-demand, first tier; read 2026-12-02.
# Lambda: https://aws.amazon.com/lambda/pricing/ (the page renders its rate tables
# client-side; the rates below are the ones it states for the first tier, as quoted in
# https://cloudchipr.com/blog/aws-lambda-pricing, and the request price in the page's
# worked examples). Response streaming: the first 6 MB of each response are not charged
# (https://aws.amazon.com/lambda/pricing/, "HTTP response streaming").
# API Gateway REST APIs: https://aws.amazon.com/api-gateway/pricing/ (first 333 million
# calls a month).
LAMBDA_REQUEST_USD = 0.20 / 1e6
GB_SECOND_USD = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
API_GATEWAY_REST_CALL_USD = 3.50 / 1e6


@dataclass(frozen=True)
class Measured:
    """What a bench/overhead.py run measured (ms, MB)."""

    cpu_ms_completion: float  # the gateway's CPU per non-streamed completion
    cpu_ms_stream: float  # ... per stream
    ttft_ms: float  # added time to first token with no store latency
    ttft_store_ms: float  # ... of which the stores' own time (not CPU: does not stretch)
    trips_before: float  # store round trips before the upstream call (warm key)
    trips_total: float  # store round trips a request, in all
    store_server_ms: float  # time the stores spend on a request's statements
    peak_rss_mb: float

    @property
    def ttft_cpu_ms(self) -> float:
        return max(0.0, self.ttft_ms - self.ttft_store_ms)


@dataclass(frozen=True)
class Setting:
    architecture: str
    memory_mb: int


@dataclass(frozen=True)
class Estimate:
    setting: Setting
    ttft_ms: float  # added time to first token
    completion_usd: float  # a million non-streamed requests, Lambda + API Gateway
    stream_usd: float  # a million streams of `stream_s` seconds
    gateway_only_usd: float  # a million requests with an upstream that answers at once

    @property
    def within_budget(self) -> bool:
        return self.ttft_ms <= BUDGET_TTFT_MS


def stretch(setting: Setting, speed: dict[str, float]) -> float:
    """How much longer CPU work takes on this setting than on this machine's core."""
    return max(1.0, VCPU_MB / setting.memory_mb) / speed[setting.architecture]


def request_usd(setting: Setting, billed_ms: float) -> float:
    """Lambda (request + duration, rounded up to 1 ms) and API Gateway for one request."""
    gb_s = setting.memory_mb / 1024 * math.ceil(billed_ms) / 1000
    gb_second = GB_SECOND_USD[setting.architecture]
    return LAMBDA_REQUEST_USD + gb_s * gb_second + API_GATEWAY_REST_CALL_USD


def estimate(
    setting: Setting, m: Measured, rtt_ms: float, upstream_s: float, stream_s: float,
    speed: dict[str, float],
) -> Estimate:  # fmt: skip
    factor = stretch(setting, speed)
    stores_ms = m.trips_total * rtt_ms + m.store_server_ms

    def million(cpu_ms: float, upstream_ms: float) -> float:
        return 1e6 * request_usd(setting, cpu_ms * factor + stores_ms + upstream_ms)

    return Estimate(
        setting,
        ttft_ms=m.trips_before * rtt_ms + m.ttft_store_ms + m.ttft_cpu_ms * factor,
        completion_usd=million(m.cpu_ms_completion, upstream_s * 1000),
        stream_usd=million(m.cpu_ms_stream, stream_s * 1000),
        gateway_only_usd=million(m.cpu_ms_completion, 0.0),
    )


def cheapest_within_budget(estimates: list[Estimate]) -> Estimate | None:
    fits = [e for e in estimates if e.within_budget]
    return min(fits, key=lambda e: (e.stream_usd, e.completion_usd)) if fits else None


def memory_for_budget(m: Measured, rtt_ms: float, trips_before: float, speed: float) -> float:
    """The least memory (MB) whose CPU share keeps the added TTFT within budget."""
    room = BUDGET_TTFT_MS - trips_before * rtt_ms - m.ttft_store_ms
    if room <= 0:
        return math.inf
    return max(128.0, VCPU_MB * m.ttft_cpu_ms / speed / room)


def report(estimates: list[Estimate], m: Measured, args: argparse.Namespace) -> None:
    print(f"Per million chat requests, USD, Lambda (requests + duration) + API Gateway REST; "
          f"store RTT {args.rtt_ms:g} ms; non-stream: upstream answers in "
          f"{args.upstream_s:g} s; stream: {args.stream_s:g} s of generation.\n")  # fmt: skip
    print("| architecture | memory MB | CPU stretch | added TTFT ms | non-stream $ | "
          f"stream {args.stream_s:g} s $ | gateway alone $ |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for e in estimates:
        ok = "" if e.within_budget else " (over)"
        factor = stretch(e.setting, {"arm64": args.arm_speed, "x86_64": args.x86_speed})
        print(f"| {e.setting.architecture} | {e.setting.memory_mb} | x{factor:.2f} | "
              f"{e.ttft_ms:.2f}{ok} | {e.completion_usd:,.2f} | {e.stream_usd:,.2f} | "
              f"{e.gateway_only_usd:,.2f} |")  # fmt: skip
    best = cheapest_within_budget(estimates)
    print(f"\npeak RSS {m.peak_rss_mb:.0f} MB: every size above fits it.")
    if best:
        print(f"cheapest within the TTFT budget: {best.setting.architecture} "
              f"{best.setting.memory_mb} MB")  # fmt: skip
    else:
        print(f"no setting keeps the added TTFT within {BUDGET_TTFT_MS} ms")
    for trips in sorted({m.trips_before, 1.0}, reverse=True):
        need = memory_for_budget(m, args.rtt_ms, trips, args.arm_speed)
        print(f"  with {trips:g} store round trip(s) before the upstream call, arm64 would "
              f"need {need:,.0f} MB" if math.isfinite(need) else
              f"  with {trips:g} store round trips before the upstream call, no memory is "
              "enough")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--cpu-ms-completion", type=float, default=1.56, help="gateway CPU ms a completion")
    add("--cpu-ms-stream", type=float, default=1.96, help="gateway CPU ms a stream")
    add("--ttft-ms", type=float, default=2.44, help="added TTFT at store RTT 0 (ms)")
    add("--ttft-store-ms", type=float, default=0.65, help="the stores' time before it (ms)")
    add("--trips-before", type=float, default=2, help="store round trips before upstream")
    add("--trips-total", type=float, default=3, help="store round trips a request")
    add("--store-server-ms", type=float, default=1.45, help="the stores' own time a request")
    add("--peak-rss-mb", type=float, default=89)
    add("--rtt-ms", type=float, default=1.0, help="Lambda to Supabase/Upstash round trip")
    add("--upstream-s", type=float, default=1.0, help="a non-streamed answer's upstream time")
    add("--stream-s", type=float, default=10.0, help="a stream's generation time")
    add("--arm-speed", type=float, default=1.0, help="arm64 vCPU speed / this machine's core")
    add("--x86-speed", type=float, default=1.0, help="x86_64 vCPU speed / this machine's core")
    args = parser.parse_args()
    m = Measured(args.cpu_ms_completion, args.cpu_ms_stream, args.ttft_ms, args.ttft_store_ms,
                 args.trips_before, args.trips_total, args.store_server_ms,
                 args.peak_rss_mb)  # fmt: skip
    speed = {"arm64": args.arm_speed, "x86_64": args.x86_speed}
    estimates = [
        estimate(Setting(arch, mb), m, args.rtt_ms, args.upstream_s, args.stream_s, speed)
        for arch in ARCHITECTURES
        for mb in MEMORY_SIZES
    ]
    report(estimates, m, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
