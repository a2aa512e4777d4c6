"""The two money statements a completion waits for (bench/README.md): the latency floor the
database sets, whatever the gateway's code.

Every billed request holds credits (`reserve_credits`) before the upstream call and
settles (`settle_usage`) before it answers, since the answer's `usage.cost` is what the
settlement charged. Both are on the request's path and neither may be skipped or made
less durable for speed. This script sends exactly the gateway's two statements
(`gatewayz.billing.credits.reserve` / `settle`, through `gatewayz.db`'s blocking
connection, the same psycopg path as `db.run`) to a bench database on the PostgreSQL
server, and reports for each, as the median of `-n` pairs:

- the client's wall time (send to row): the server's work, its commit (`settle_usage`'s
  durable commit waits for the WAL to reach disk; a hold commits without waiting), the
  protocol and one loopback round trip;
- the server's time inside the function (`pg_stat_user_functions.total_time`, the
  database's `track_functions = 'pl'`): the plpgsql alone, its commit not counted;
- `SELECT 1` on the same connection, for what any statement costs on this path.

Two modes: back to back (a busy function), and with `--pause` ms between requests (an
idle one between requests, as `bench/overhead.py`'s round-trip blocks run).

`--statements` then times each statement the two functions run, back to back, with
PostgreSQL's auto_explain (nested statements, row counts without timers), its report
sent to this client as notices: where the server's time inside them goes. The module
is loaded into this session only (`LOAD` needs a superuser, as the bench's server has).

Run: `.venv/bin/python bench/money_statements.py [-n 1000] [--pause 20] [--statements]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETTLE_STATS_S = 11.0  # a backend's function statistics reach the views within this


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=1000, help="pairs per mode")
    parser.add_argument("--pause", type=float, default=20.0, help="ms between paused pairs")
    parser.add_argument(
        "--statements", action="store_true", help="then the time of each statement inside"
    )
    parser.add_argument(
        "--pg-server",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    import overhead  # bench/ is this script's sys.path[0]

    os.environ["GATEWAYZ_HOME"] = tempfile.mkdtemp(prefix="gatewayz-money-")
    fixture = overhead.create_database(args.pg_server, 0)
    try:
        from gatewayz import db

        with db.connect(fixture.url) as conn:
            print(server_settings(conn))
            bench = Pairs(conn, fixture.account_id)
            bench.run(200, 0.0)  # warm-up: plans cached, pages in memory
            for pause in (0.0, args.pause / 1000):
                n = args.requests if not pause else max(1, args.requests // 3)
                report(bench, n, pause)
            if args.statements:
                statements(bench, args.requests)
    finally:
        overhead.drop_database(args.pg_server, fixture.url)
    return 0


class Pairs:
    """Holds and settles one request after another, as the gateway's chat path does."""

    def __init__(self, conn: Any, account_id: str) -> None:
        self.conn, self.account_id = conn, account_id
        row = conn.execute(
            "SELECT id::text FROM api_keys WHERE account_id = %s LIMIT 1", (account_id,)
        ).fetchone()
        self.key_id = row[0]

    def run(self, n: int, pause: float) -> dict[str, list[float]]:
        from overhead import MODEL

        from gatewayz.billing import credits, pricing

        walls: dict[str, list[float]] = {"reserve": [], "settle": [], "select 1": []}
        for _ in range(n):
            query = credits.reserve(
                account_id=self.account_id,
                api_key_id=self.key_id,
                request_id=f"req_{uuid.uuid4().hex}",
                max_nanos=10_000_000,
                min_nanos=1,
                ttl_s=600,
                concurrency=1000,
                key_concurrency=None,
            )
            hold = self._timed(walls["reserve"], query)
            assert isinstance(hold, credits.Hold), hold
            record = credits.UsageRecord(
                endpoint="chat.completions",
                model=MODEL,
                status=200,
                cost_nanos=5_000,
                provider="openrouter",
                provider_model="bench/echo",
                usage=pricing.Usage(input_tokens=30, output_tokens=12),
                latency_ms=3,
                upstream_latency_ms=1,
                finish_reason="stop",
            )
            self._timed(walls["settle"], credits.settle(hold, record))
            started = time.perf_counter()
            self.conn.execute("SELECT 1").fetchone()
            walls["select 1"].append(time.perf_counter() - started)
            if pause:
                time.sleep(pause)
        return walls

    def _timed(self, into: list[float], query: Any) -> Any:
        ((sql, params),) = query.statements
        started = time.perf_counter()
        row = self.conn.execute(sql, params).fetchone()
        into.append(time.perf_counter() - started)
        return query.read(row)

    def in_function_us(self) -> dict[str, tuple[int, float]]:
        """Calls and total µs inside each function so far (statistics settled first)."""
        time.sleep(SETTLE_STATS_S)
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = self.conn.execute(
            "SELECT funcname, calls, total_time FROM pg_stat_user_functions"
            " WHERE funcname IN ('reserve_credits', 'settle_usage')"
        ).fetchall()
        return {name: (int(calls), float(ms) * 1000) for name, calls, ms in rows}


def report(bench: Pairs, n: int, pause: float) -> None:
    before = bench.in_function_us()
    walls = bench.run(n, pause)
    after = bench.in_function_us()
    mode = f"{pause * 1000:g} ms between requests" if pause else "back to back"
    print(f"\n{n} requests, {mode}: µs, median of the client's wall time (and in the function)")
    for name, function in (("reserve", "reserve_credits"), ("settle", "settle_usage")):
        calls = after[function][0] - before[function][0]
        inside = (after[function][1] - before[function][1]) / calls
        print(f"  {function:16} {statistics.median(walls[name]) * 1e6:7.0f}  ({inside:.0f})")
    print(f"  {'SELECT 1':16} {statistics.median(walls['select 1']) * 1e6:7.0f}")
    both = statistics.median(a + b for a, b in zip(walls["reserve"], walls["settle"], strict=True))
    print(f"  both, one request {both * 1e6:6.0f}")


def statements(bench: Pairs, n: int) -> None:
    """The median time of each statement inside the two functions, as auto_explain saw it
    (`duration`: the statement's execution, its nested statements included)."""
    import re

    conn = bench.conn
    durations: dict[str, list[float]] = {}
    pattern = re.compile(r"duration: ([\d.]+) ms\s+plan:\s*Query Text: ([^\n]*)")

    def heard(notice: Any) -> None:
        found = pattern.search(notice.message_primary or "")
        if found:
            text = " ".join(found.group(2).split())[:90]
            durations.setdefault(text, []).append(float(found.group(1)) * 1000)

    conn.execute("LOAD 'auto_explain'")
    for name, value in (
        ("log_min_duration", "0"),
        ("log_nested_statements", "on"),
        ("log_analyze", "on"),
        ("log_timing", "off"),  # the statement's duration only, no timer per plan node
        ("log_level", "notice"),
    ):
        conn.execute(f"SET auto_explain.{name} = {value}")
    conn.add_notice_handler(heard)
    try:
        bench.run(n, 0.0)
    finally:
        conn.execute("SET auto_explain.log_min_duration = -1")
        conn.remove_notice_handler(heard)
    print(f"\n{n} requests, back to back, each statement as auto_explain timed it: µs, median")
    ranked = sorted(durations.items(), key=lambda kv: -statistics.median(kv[1]) * len(kv[1]))
    for text, values in ranked:
        per = len(values) / n
        print(f"  {statistics.median(values):7.1f}  x{per:.0f}  {text}")


def server_settings(conn: Any) -> str:
    shown = [
        f"{name} {conn.execute(f'SHOW {name}').fetchone()[0]}"
        for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
    ]
    return "PostgreSQL: " + ", ".join(shown)


if __name__ == "__main__":
    sys.exit(main())
