"""The added latency's floor (bench/README.md): what a billed completion adds at one client
when a server does nothing but what the money rules put on its path, beside the chat
function, in the same run.

`app` (this module, served by uvicorn with `functions/chat/run.sh`'s options) is that
server: it reads the body, sends the hold (`credits.reserve`, the gateway's statement)
and a Redis script call with it (read after the hold, as the gateway reads its rate
limit), posts the body to the upstream, settles (`credits.settle`, durable), and
answers with the upstream's JSON and `usage.cost`. It uses the gateway's own cheapest
paths (`gatewayz.adb` for PostgreSQL, `gatewayz.chat.upstream` for the provider), and
none of its rules: no key lookup, policy, pricing, routing, idempotency, headers or
metrics. Whatever any Python gateway on these libraries, this database and this machine
adds to a completion, it is at least what this one adds.

The run sends the same request straight to the upstream and through this server, and
straight to the upstream and through the chat function (as `bench/overhead.py --serve
function` runs it), each pair interleaved request by request at one client in a block
of its own (the two blocks' order alternating round by round; `--mixed`: all three
interleaved in one block), and reports each server's added p50/p99 and CPU time a
request (`/proc/<pid>/task/*/schedstat`), over `--rounds` rounds.

Run: `.venv/bin/python bench/latency_floor.py [-n 1000] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "return {1,2,3}"  # bench/floor.py's row 6: 5 keys, 20 arguments
REDIS_KEYS = [f"floor:{i}" for i in range(5)]
REDIS_ARGS = list(range(20))
USAGE = re.compile(rb'"usage": ?\{')  # the event that reports usage (others say null)


# --- the floor server ------------------------------------------------------------------


class _Floor:
    """The least a billed completion does, on the gateway's own store and upstream paths."""

    def __init__(self) -> None:
        import redis

        from gatewayz.chat.upstream import Limits

        env = os.environ
        self.account_id, self.key_id = env["FLOOR_ACCOUNT_ID"], env["FLOOR_KEY_ID"]
        self.base_url = env["OPENROUTER_BASE_URL"]
        self.limits = Limits(connect_s=5.0, read_s=60.0)
        self.redis = redis.Redis.from_url(env["REDIS_URL"])
        sha = self.redis.script_load(SCRIPT)
        self.connection = self.redis.connection_pool.get_connection()
        self.command = ("EVALSHA", sha, len(REDIS_KEYS), *REDIS_KEYS, *REDIS_ARGS)

    async def hold(self) -> Any:
        """The hold, with the Redis call sent while PostgreSQL runs it and read after."""
        import hiredis

        from gatewayz import adb
        from gatewayz.billing import credits

        holding = adb.start(
            credits.reserve(
                account_id=self.account_id,
                api_key_id=self.key_id,
                request_id="req_" + os.urandom(16).hex(),
                max_nanos=10_000_000,
                min_nanos=1,
                ttl_s=600,
                concurrency=1000,
                key_concurrency=None,
            )
        )
        self.connection.send_packed_command([hiredis.pack_command(self.command)])
        hold = await holding
        self.connection.read_response()
        assert isinstance(hold, credits.Hold), hold
        return hold

    async def settle(self, hold: Any, answer: dict[str, Any], *, streamed: bool) -> int:
        """The durable settlement of `answer`'s usage; what it charged."""
        from gatewayz import adb
        from gatewayz.billing import credits, pricing

        reported = answer["usage"]
        record = credits.UsageRecord(
            endpoint="chat.completions",
            model=answer["model"],
            status=200,
            cost_nanos=reported["prompt_tokens"] * 1000 + reported["completion_tokens"] * 2000,
            provider="openrouter",
            provider_model=answer["model"],
            upstream_id=answer["id"],
            usage=pricing.Usage.from_openai(reported),
            latency_ms=1,
            upstream_latency_ms=1,
            finish_reason="stop",
            streamed=streamed,
        )
        settled = await adb.run(credits.settle(hold, record))
        return settled.charged_nanos

    async def complete(self, body: bytes, send: Send) -> None:
        import orjson

        from gatewayz.chat import upstream

        stream = orjson.loads(body).get("stream") is True  # parsed, as any server must
        hold = await self.hold()
        accept = "text/event-stream" if stream else "application/json"
        headers = {"content-type": "application/json", "accept": accept}
        reply = await upstream.post(self.base_url, "/chat/completions", body, headers, self.limits)
        try:
            if stream:
                await self._relay(hold, reply, send)
                return
            answer = orjson.loads(await reply.read())
        finally:
            await reply.close()
        answer["usage"]["cost"] = await self.settle(hold, answer, streamed=False) / 1e9
        out = orjson.dumps(answer)
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(out)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": out})

    async def _relay(self, hold: Any, reply: Any, send: Send) -> None:
        """Events passed on as they come, those that came together in one write; the
        usage event held until it is settled."""
        import orjson

        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        })  # fmt: skip
        pending = b""
        usage_event = None
        async for chunk in reply.chunks():
            pending += chunk
            *events, pending = pending.split(b"\n\n")
            out = []
            for event in events:
                if event.startswith(b"data: {") and USAGE.search(event):
                    usage_event = orjson.loads(event[6:])
                elif event != b"data: [DONE]":
                    out.append(event + b"\n\n")
            if out:
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
        assert usage_event is not None
        charged = await self.settle(hold, usage_event, streamed=True)
        usage_event["usage"]["cost"] = charged / 1e9
        tail = b"data: " + orjson.dumps(usage_event) + b"\n\ndata: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail})


_floor: _Floor | None = None


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """ASGI: every POST is a completion; the lifespan is acknowledged."""
    global _floor
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if _floor is None:
        _floor = _Floor()
    await _floor.complete(body, send)


# --- the run ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=1000, help="per round and kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--store-latency-ms",
        default="0",
        help="comma-separated round trip times bench/latency_proxy.py adds to every "
        "PostgreSQL and Redis round trip of both servers (0: no proxy); one run each",
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="the direct requests and both servers' interleaved in one block (each server "
        "then idles through the other's requests); by default each server has its own block "
        "with the direct requests, the two blocks' order alternating round by round",
    )
    parser.add_argument(
        "--quiet", type=float, default=10, help="seconds to wait for an idle machine per round"
    )
    args = parser.parse_args()
    args.serve, args.gateway_path = "function", None  # what overhead.gateway_env reads

    import overhead as oh  # bench/ is this script's sys.path[0]

    from gatewayz.config import Settings

    for name in Settings.model_fields:
        os.environ.pop(name.upper(), None)
    tmp = Path(tempfile.mkdtemp(prefix="gatewayz-floor-"))
    home = tmp / "home"
    os.environ["GATEWAYZ_HOME"] = str(home)  # the pepper the gateway will find there
    fixture = oh.create_database(args.pg_server, 0)
    upstream, upstream_port = oh.start_upstream(tmp)
    runs = {}
    try:
        for ms in (float(v) for v in args.store_latency_ms.split(",")):
            runs[ms] = _run(args, oh, fixture, upstream_port, tmp, home, ms)
    finally:
        oh.stop(upstream)
        oh.drop_database(args.pg_server, fixture.url)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"python {sys.version.split()[0]}, nproc {os.cpu_count()}; {args.requests} requests"
        f" a round and kind to each, interleaved, 1 client, {args.warmup} to warm up"
    )
    for ms, rounds in runs.items():
        _report(ms, rounds)
    return 0


def _run(args: argparse.Namespace, oh: Any, fixture: Any, upstream: int, tmp: Path,
         home: Path, store_ms: float) -> list[dict[str, float]]:  # fmt: skip
    """Both servers started (behind a latency proxy, for a store RTT above 0), measured."""
    env = oh.gateway_env(args, fixture, upstream, "off", home)
    proxy = None
    if store_ms:
        proxy, env = oh.start_proxy(store_ms, fixture, args.redis_url, upstream, env)
        upstream = proxy.ports["upstream"]  # both paths, so the watch's hop cancels out
    servers: list[Any] = []
    try:
        gateway, gateway_port = oh.start_gateway("function", env, tmp / "gateway.log")
        servers.append(gateway)
        floor, floor_port = _start_floor(env, fixture, tmp / "floor.log")
        servers.append(floor)
        ports, pids = (upstream, floor_port, gateway_port), (floor.pid, gateway.pid)
        return _measure(args, oh, fixture, ports, pids)
    except Exception:
        for log in (tmp / "floor.log", tmp / "gateway.log"):  # why a server answered so
            if log.exists():
                print(f"--- {log.name}, last lines:", *log.read_text().splitlines()[-15:],
                      sep="\n", file=sys.stderr)  # fmt: skip
        raise
    finally:
        for proc in servers:
            oh.stop(proc)
        if proxy:
            proxy.stop()


def key_id(fixture: Any) -> str:
    """The id of the bench fixture's key (the floor's hold and usage rows name it)."""
    import psycopg

    with psycopg.connect(fixture.url) as conn:
        row = conn.execute(
            "SELECT id::text FROM api_keys WHERE account_id = %s", (fixture.account_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def _start_floor(env: dict[str, str], fixture: Any, log: Path) -> tuple[Any, int]:
    import subprocess

    import overhead as oh

    port = oh.free_port()
    env = env | {
        "PORT": str(port),
        "FLOOR_ACCOUNT_ID": fixture.account_id,
        "FLOOR_KEY_ID": key_id(fixture),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), env["PYTHONPATH"]]),
    }
    command = [sys.executable, "-m", "uvicorn", *oh.run_sh_options(port), "latency_floor:app"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    oh.wait_for_port(port, proc, log)
    return proc, port


def _measure(args: argparse.Namespace, oh: Any, fixture: Any, ports: tuple[int, int, int],
             pids: tuple[int, int]) -> list[dict[str, float]]:  # fmt: skip
    """Per round: the floor's and the function's added completion p50/p99 and time to
    first token p50 (ms), and CPU a completion and a stream (µs)."""
    up = oh.Connection(ports[0])
    servers = {"floor": (oh.Connection(ports[1]), pids[0]),
               "function": (oh.Connection(ports[2], oh.Adapter()), pids[1])}  # fmt: skip
    requests = {}
    for kind, stream in (("completion", False), ("stream", True)):
        direct = oh.request_bytes(stream=stream)
        requests[kind] = {
            "floor": direct,
            "function": oh.request_bytes(stream=stream, key=fixture.key),
        }
        for name, (conn, _) in servers.items():
            oh.interleaved([(up, [direct]), (conn, [requests[kind][name]])], args.warmup)
    rounds = []
    pg = oh.PgCounters(args.pg_server, fixture.url)
    try:
        for r in range(args.rounds):
            row: dict[str, float] = {}
            for kind, raws in requests.items():
                direct = raws["floor"]
                names = list(servers) if r % 2 == 0 else list(servers)[::-1]
                # --mixed: all three in one block; else one server a block, with the direct.
                blocks = [names] if args.mixed else [[name] for name in names]
                for block in blocks:
                    pg.vacuum()
                    oh.wait_quiet(args.quiet)
                    marks = [oh.sched_ns(servers[name][1])[0] for name in block]
                    targets = [(up, [direct]), *((servers[n][0], [raws[n]]) for n in block)]
                    d, *through = oh.interleaved(targets, args.requests)
                    for name, mark, samples in zip(block, marks, through, strict=True):
                        cpu = oh.sched_ns(servers[name][1])[0] - mark
                        row[f"{name} {kind} cpu"] = cpu / args.requests / 1e3
                        _added(row, name, kind, oh, d, samples)
            rounds.append(row)
    finally:
        pg.close()
        for conn in (up, *(c for c, _ in servers.values())):
            conn.close()
    return rounds


def _added(row: dict[str, float], name: str, kind: str, oh: Any, direct: list[Any],
           through: list[Any]) -> None:  # fmt: skip
    """A completion's added p50 and p99, or a stream's added time to first token, ms."""
    if kind == "completion":
        d, t = oh._totals(direct), oh._totals(through)
        for q in (0.5, 0.99):
            row[f"{name} p{q * 100:.0f}"] = (oh.pct(t, q) - oh.pct(d, q)) * 1e3
    else:
        d, t = oh._ttfts(direct), oh._ttfts(through)
        row[f"{name} ttft"] = (oh.pct(t, 0.5) - oh.pct(d, 0.5)) * 1e3


def _report(store_ms: float, rounds: list[dict[str, float]]) -> None:
    print(f"\nstore RTT +{store_ms:g} ms: added ms (p50 / p99 of a completion; p50 time to first"
          " token of a stream) and CPU µs (a completion / a stream), per round\n")  # fmt: skip
    print(
        "| round | floor: completion | floor: first token | floor: CPU | "
        "chat function: completion | first token | CPU | function - floor, p50 / TTFT |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(rounds, 1):
        cells = [str(i)]
        for name in ("floor", "function"):
            cpu = f"{r[f'{name} completion cpu']:.0f} / {r[f'{name} stream cpu']:.0f}"
            cells += [f"{r[f'{name} p50']:.2f} / {r[f'{name} p99']:.2f}",
                      f"{r[f'{name} ttft']:.2f}", cpu]  # fmt: skip
        cells.append(f"{r['function p50'] - r['floor p50']:+.2f} / "
                     f"{r['function ttft'] - r['floor ttft']:+.2f}")  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    for what in ("p50", "ttft"):
        floor = statistics.median(r[f"floor {what}"] for r in rounds)
        function = statistics.median(r[f"function {what}"] for r in rounds)
        print(f"median {what}: floor {floor:.2f} ms, chat function {function:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
