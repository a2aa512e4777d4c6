"""The chat function's own cost per request, in process (bench/README.md).

`bench/overhead.py` measures the gateway from outside, as a client sees it; on this
shared two-core machine its CPU figures swing by a third from one half hour to the next.
This script calls the chat function's ASGI app directly (no HTTP server, no client) with
the real PostgreSQL and Redis and the fake upstream (`bench/upstream.py`), after the app's
startup has run as under the Lambda Web Adapter, and reports the process's CPU per
request. Under `--instructions` it runs itself twice under valgrind's callgrind and
reports machine instructions per request (the difference between a short and a long run,
so start-up cancels out): a count that does not depend on what else the machine is
doing, for comparing two versions of the code (`--checkout`: another checkout's
`layers/common` and `functions/chat`, e.g. a `git worktree add /tmp/old <commit>`).
`--syscalls` does the same under `strace -c` (the process's main thread, which runs the
event loop; the fake upstream is another process and is not counted): system calls per
request, by call. `--profile` prints a cProfile of the requests (slowed several times by
the profiler: read its shares). `--phases` splits each request at its store and provider
calls (it wraps `gatewayz.adb.run` and `gatewayz.chat.upstream.post`) and at its first
body bytes (a stream's first token): the median CPU and wall time of each phase, so the
time to first token can be read as CPU before the hold, the hold's wait, and so on.

`--history` sends completions naming a chat session (as `overhead.py`'s `history` kind);
`--floor` serves the requests with `bench/latency_floor.py`'s server instead of the chat
function (the money path alone, none of the gateway's rules), for its counts and phases;
`--store-latency-ms 1` reaches PostgreSQL and Redis through `bench/latency_proxy.py`, so
`--phases` shows where a request waits at 1 ms of store round trip time.

Run: `.venv/bin/python bench/inprocess.py [--stream | --history] [--instructions] [--syscalls]
[--profile] [--phases] [--store-latency-ms MS] [--floor]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=1000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--stream", action="store_true", help="streamed completions")
    parser.add_argument(
        "--history", action="store_true",
        help="completions naming a chat session (history injected: overhead.py's `history`)",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="then a cProfile of a round")
    parser.add_argument("--profile-out", help="also write that profile here (pstats)")
    parser.add_argument(
        "--instructions", action="store_true", help="instructions per request (callgrind)"
    )
    parser.add_argument(
        "--syscalls", action="store_true", help="system calls per request (strace -c)"
    )
    parser.add_argument(
        "--phases", action="store_true", help="CPU and wall time between a request's calls"
    )
    parser.add_argument("--checkout", help="a checkout whose chat function to measure")
    parser.add_argument(
        "--floor", action="store_true",
        help="bench/latency_floor.py's server (the money path alone) in the function's place",
    )  # fmt: skip
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--store-latency-ms", type=float, default=None,
        help="reach PostgreSQL and Redis through bench/latency_proxy.py, adding this round "
        "trip time (e.g. 1 with --phases: where a request waits at 1 ms store RTT)",
    )  # fmt: skip
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop",
        help="the event loop (functions/chat/run.sh runs uvicorn on uvloop)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.floor and args.history:
        parser.error("the floor server reads no history: --floor or --history")
    if args.instructions or args.syscalls:
        return per_request(args)
    code = Path(args.checkout).resolve() if args.checkout else ROOT
    sys.path.insert(0, str(code / "layers" / "common"))
    sys.path.insert(0, str(ROOT / "bench"))
    import overhead

    tmp = Path(tempfile.mkdtemp(prefix="gatewayz-inprocess-"))
    from gatewayz.config import Settings

    for name in Settings.model_fields:
        os.environ.pop(name.upper(), None)
    os.environ["GATEWAYZ_HOME"] = str(tmp / "home")
    fixture = overhead.create_database(SERVER, 0)
    upstream, port = overhead.start_upstream(tmp)
    proxy = None
    try:
        how = argparse.Namespace(serve="dev", gateway_path=None, redis_url=args.redis_url)
        env = overhead.gateway_env(how, fixture, port, "off", tmp / "home")
        if args.store_latency_ms is not None:
            proxy, env = overhead.start_proxy(
                args.store_latency_ms, fixture, args.redis_url, port, env
            )
        os.environ.clear()
        os.environ.update(env)
        from gatewayz import config, db

        config.get_settings.cache_clear()
        db.reset()
        if args.floor:
            import latency_floor as chat

            os.environ |= {
                "FLOOR_ACCOUNT_ID": fixture.account_id,
                "FLOOR_KEY_ID": chat.key_id(fixture),
            }
        else:
            sys.path.insert(0, str(code / "functions" / "chat"))
            import app as chat

        if args.phases:
            _wrap_calls(
                ("history read", "hold", "settlement") if args.history else ("hold", "settlement")
            )

        if args.loop == "uvloop":
            import uvloop

            uvloop.run(run(chat.app, fixture, args))
        else:
            asyncio.run(run(chat.app, fixture, args))
    finally:
        if proxy is not None:
            proxy.stop()
        overhead.stop(upstream)
        overhead.drop_database(SERVER, fixture.url)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


async def run(app: Any, fixture: Any, args: argparse.Namespace) -> None:
    import json

    from overhead import HISTORY_MAX_TOKENS, MESSAGES, MODEL

    fields: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "stream": args.stream}
    if args.history:
        fields |= {"session_id": fixture.session_id, "history": {"max_tokens": HISTORY_MAX_TOKENS}}
    body = json.dumps(fields).encode()
    key = fixture.key
    headers = [
        (b"host", b"gateway"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    lifespan, stopped = await _start(app)
    requests: list[list[tuple[str, float, float]]] = []  # each one's marks (--phases)

    async def one() -> None:
        sent: list[dict[str, Any]] = []
        given = False
        _MARKS.clear()
        _mark("start")

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never leaves
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message.get("body") and not any(m[0] == "first bytes" for m in _MARKS):
                _mark("first bytes")
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
            "headers": list(headers), "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)
        _mark("end")
        if sent[0]["status"] != 200:
            raise RuntimeError(f"the gateway answered {sent}")
        if args.history and not int(dict(sent[0]["headers"]).get(b"x-history-messages", 0)):
            raise RuntimeError(f"no history was injected: {sent[0]}")
        requests.append(list(_MARKS))

    for _ in range(args.warmup):
        await one()
    print(f"python {sys.version.split()[0]}, {args.loop}, "
          f"{_kind(args)}")  # fmt: skip
    for r in range(args.rounds):
        requests.clear()
        before, wall = os.times(), time.perf_counter()
        for _ in range(args.requests):
            await one()
        after, wall = os.times(), time.perf_counter() - wall
        user, system = after.user - before.user, after.system - before.system
        per = 1e6 / args.requests
        cpu = (user + system) * per
        print(f"round {r}: CPU {cpu:.0f} µs a request (user {user * per:.0f}, "
              f"system {system * per:.0f}), wall {wall * per:.0f} µs")  # fmt: skip
        if args.phases:
            print_phases(requests)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.requests):
            await one()
        profiler.disable()
        stats = pstats.Stats(profiler)
        if args.profile_out:
            stats.dump_stats(args.profile_out)
        stats.sort_stats("cumulative").print_stats("gatewayz", 60)
        stats.sort_stats("tottime").print_stats(30)
    await lifespan.put({"type": "lifespan.shutdown"})  # closes the upstream pool
    await stopped.wait()


async def _start(app: Any) -> tuple[asyncio.Queue[dict[str, Any]], asyncio.Event]:
    """Run the app's lifespan startup, as uvicorn does under the Lambda Web Adapter;
    `lifespan.shutdown` put in the queue stops it, and then the event is set."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()
    await queue.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.shutdown.complete":
            stopped.set()
        else:
            raise RuntimeError(f"lifespan: {message}")

    stopped = asyncio.Event()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    _lifespans.add(asyncio.create_task(app(scope, queue.get, send)))
    await started.wait()
    return queue, stopped


_lifespans: set[asyncio.Task[None]] = set()  # a task the loop only holds weakly


# (name, process CPU, wall) at each point of the request in flight (`--phases`).
_MARKS: list[tuple[str, float, float]] = []


def _mark(name: str) -> None:
    _MARKS.append((name, time.process_time(), time.perf_counter()))


def _wrap_calls(names: tuple[str, ...]) -> None:
    """Mark each statement awaited (`adb.run`: the hold, then the settlement) and the
    provider's call up to its headers (`upstream.post`). Wrapped in this bench only."""
    from gatewayz import adb
    from gatewayz.chat import upstream

    statement, provider = adb.run, upstream.post

    async def run(query: Any) -> Any:
        name = names[min(len(names) - 1, sum(m[0].endswith("sent") for m in _MARKS))]
        _mark(f"{name} sent")
        try:
            return await statement(query)
        finally:
            _mark(f"{name} back")

    async def post(*args: Any, **kwargs: Any) -> Any:
        _mark("provider called")
        try:
            return await provider(*args, **kwargs)
        finally:
            _mark("provider's headers")

    adb.run, upstream.post = run, post  # type: ignore[assignment]


def print_phases(requests: list[list[tuple[str, float, float]]]) -> None:
    """Median CPU and wall time from each mark to the next, over the requests whose marks
    came in the most common order (a few differ: e.g. a statement that waited for a
    connection)."""
    orders: dict[tuple[str, ...], list[list[tuple[str, float, float]]]] = {}
    for marks in requests:
        orders.setdefault(tuple(m[0] for m in marks), []).append(marks)
    order, alike = max(orders.items(), key=lambda kv: len(kv[1]))
    print(f"  phases ({len(alike)} of {len(requests)} requests in this order), µs:")
    for i in range(1, len(order)):
        cpu = statistics.median(m[i][1] - m[i - 1][1] for m in alike) * 1e6
        wall = statistics.median(m[i][2] - m[i - 1][2] for m in alike) * 1e6
        print(f"    {order[i - 1]:>18} -> {order[i]:<18} CPU {cpu:6.0f}  wall {wall:6.0f}")
    if "first bytes" in order:
        at = order.index("first bytes")
        cpu = statistics.median(m[at][1] - m[0][1] for m in alike) * 1e6
        wall = statistics.median(m[at][2] - m[0][2] for m in alike) * 1e6
        print(f"    to the first bytes: CPU {cpu:.0f}, wall {wall:.0f}")


def per_request(args: argparse.Namespace) -> int:
    """Instructions (callgrind) or system calls (strace -c) per request: (long run - short
    run) / their difference in requests, so that start-up cancels out."""
    tool, measure = ("valgrind", _callgrind) if args.instructions else ("strace", _strace)
    if shutil.which(tool) is None:
        print(f"{tool} is not installed", file=sys.stderr)
        return 1
    short, long = 20, 20 + args.requests
    runs = [measure(args, n) for n in (short, long)]
    per = {name: (runs[1][name] - runs[0].get(name, 0)) / (long - short) for name in runs[1]}
    if args.instructions:
        what = f"{per['instructions']:,.0f} instructions a request (callgrind"
    else:
        calls = sorted(((n, c) for n, c in per.items() if c >= 0.05), key=lambda nc: -nc[1])
        listed = ", ".join(f"{name} {count:.2f}" for name, count in calls)
        what = f"{sum(per.values()):.1f} system calls a request ({listed}; strace -c"
    print(f"python {sys.version.split()[0]}, {_kind(args)}, "
          f"{args.checkout or 'this checkout'}: {what}, {short} and {long} requests after "
          f"{args.warmup} warm-up)")  # fmt: skip
    return 0


def _strace(args: argparse.Namespace, requests: int) -> dict[str, int]:
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(
            ["strace", "-c", "-o", out.name, *_itself(args, requests)],
            capture_output=True, check=True, env=_SAME_HASHES,
        )  # fmt: skip
        return calls_by_syscall(out.read())


def calls_by_syscall(summary: str) -> dict[str, int]:
    """The `calls` column of an `strace -c` summary, by system call (without the total)."""
    rows = re.findall(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", summary, re.M)
    return {name: int(calls) for calls, name in rows if name != "total"}


# The measured runs hash strings alike: with a random seed, sets and dicts of strings
# probe differently from run to run, and the count moves by ~1 % with nothing changed.
_SAME_HASHES = {**os.environ, "PYTHONHASHSEED": "0"}


def _kind(args: argparse.Namespace) -> str:
    kind = ("streams" if args.stream else "completions") + (" with history" if args.history else "")
    return kind + (", the floor server" if args.floor else "")


def _itself(args: argparse.Namespace, requests: int) -> list[str]:
    """This script's command line for one round of `requests`, as `args` asked."""
    return [
        sys.executable, __file__, "-n", str(requests), "--rounds", "1",
        "--warmup", str(args.warmup), "--redis-url", args.redis_url, "--loop", args.loop,
        *(["--stream"] if args.stream else []),
        *(["--history"] if args.history else []),
        *(["--floor"] if args.floor else []),
        *(["--checkout", args.checkout] if args.checkout else []),
    ]  # fmt: skip


def _callgrind(args: argparse.Namespace, requests: int) -> dict[str, int]:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        *_itself(args, requests),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=_SAME_HASHES)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind:\n{done.stderr[-2000:]}")
    return {"instructions": int(found.group(1))}


if __name__ == "__main__":
    sys.exit(main())
