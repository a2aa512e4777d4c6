"""The floor (bench/README.md): the CPU each library costs per chat completion for the
minimum the request needs, in isolation, with nothing of the gateway's code around it.

Each row is "CPU µs per operation": process CPU over `-n` operations after a warm-up, the
median (and range) of `--rounds` rounds, the rows interleaved round by round (the order
reversed every other round) so a busy moment of this shared machine hits them alike.

1-3. HTTP serving: uvicorn (flags of functions/chat/run.sh, httptools and the event loop
     as installed) in a subprocess, serving a bare ASGI app, a Starlette app with one
     Route and a FastAPI app with one POST route; a raw keep-alive socket here sends a
     chat request with an OpenAI SDK's headers. The server's CPU per request is read from
     /proc/<pid>/task/*/schedstat (nanoseconds on a CPU, all its threads).
4.   aiohttp: one ClientSession (configured as the gateway's was until it had its own
     client), POST of a ~200-byte JSON body to bench/upstream.py in a subprocess,
     `await resp.read()`. 4g: the same exchange through the gateway's own client
     (gatewayz/chat/upstream.py over provider_http.py): `post`, `read`, `close`.
5.   psycopg: one connection (autocommit, prepare_threshold=None), `SELECT %s, ...` with
     the 8 and the 23 parameters of reserve_credits and settle_usage, `.fetchone()`;
     `SELECT 1` for the cost of a statement without parameters.
6.   redis-py + hiredis: EVALSHA of `return {1,2,3}` with 5 keys and 20 int arguments.
7.   orjson loads + dumps of the upstream's answer; pydantic v2 validation of a chat body.
8.   asyncio: one event-loop round (`await asyncio.sleep(0)`), a task spawned and awaited.
9.   A blocking loopback TCP round trip of one byte to an echo process: the kernel's and
     the scheduler's share of every synchronous store call in rows 5-6 (on a KVM guest
     whose CPUs go idle while it waits, a good part of those rows).

Before each round the bench waits (`--quiet`) for an idle machine. `--spin` keeps every
CPU busy at nice 19 during the rounds: a blocking round trip then costs much less CPU on
this KVM guest (no CPU wakes from idle, and the two ends may share a CPU), so the
difference from a run without it is the scheduler's share, not the libraries' code.
Rows 4-9 run in this process (time.process_time: this process's CPU only, so neither the
database's nor Redis's nor the upstream's work is counted). Then the sum of the floor for
one completion, and what it leaves of the 1.0 ms CPU budget.

Run: `.venv/bin/python bench/floor.py` (see `--help`); TEST_DATABASE_URL and
TEST_REDIS_URL, when set, name the stores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overhead import cpu_idle, free_port, stop, wait_for_port  # bench/ is on sys.path[0]

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PATH = "/v1/chat/completions"
BUDGET_US = 1000.0  # gateway CPU per non-streamed completion (issue 11)

# The chat request a client sends (~300 bytes) and the answer the servers give (~400).
REQUEST_BODY = (
    b'{"messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},'
    b'{"role":"user","content":"Say hello from the bench, in one short sentence, and nothing'
    b' else."}],"model":"openai/gpt-4o-mini","max_tokens":64,"temperature":0.2,'
    b'"user":"bench-user-0001"}'
)
ANSWER: dict[str, Any] = {
    "id": "chatcmpl-bench-0123456789abcdef",
    "object": "chat.completion",
    "created": 1764700000,
    "model": "openai/gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the bench upstream, at once."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 32, "completion_tokens": 9, "total_tokens": 41},
    "system_fingerprint": "fp_bench_0123456789",
    "provider": "bench",
}
# What the gateway sends upstream (~200 bytes).
UPSTREAM_BODY = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello from the'
    b' bench, in one short sentence."}],"max_tokens":64,"temperature":0.2,"stream":false,'
    b'"user":"acct_0123456789"}'
)

# reserve_credits' 8 and settle_usage's 23 parameters (text, int, bool, None).
ACCOUNT = "7d9f4a52-3c1e-4b8a-9f0e-2a6b5c4d3e21"
KEY = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
REQUEST_ID = "req_01JD2Q8X7Z5K3M9N4P6R8T0V2W"
RESERVE_PARAMS: tuple[Any, ...] = (ACCOUNT, KEY, REQUEST_ID, 2_500_000, 1_000, 900, None, 8)
SETTLE_PARAMS: tuple[Any, ...] = (
    *(REQUEST_ID, ACCOUNT, KEY, 123_456, 1_234),
    *("chat.completions", "openai/gpt-4o-mini", "openai", "gpt-4o-mini", "chatcmpl-0123"),
    *(32, 0, 9, 0, 0, 412, 398, None, 200, "stop", None, False, False),
)
SCRIPT = "return {1,2,3}"
REDIS_KEYS = [f"rl:{{{ACCOUNT}}}:{kind}" for kind in ("rpm", "rpd", "tpm", "key:rpm", "ip")]
REDIS_ARGS = [1764700000123, 60_000, 600, 86_400_000, 10_000, 60_000, 1_000_000, 32, 1, 0]
REDIS_ARGS += [120, 1, 3, 4, 5, 6, 7, 8, 9, 10]


# --- the servers (uvicorn factories, imported by `python -m uvicorn --factory`) ---------


def _answer_bytes() -> bytes:
    import json

    return json.dumps(ANSWER, separators=(",", ":")).encode()


def asgi_app() -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: read the body, answer the JSON (its bytes made once)."""
    body = _answer_bytes()
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    end = {"type": "http.response.body", "body": body, "more_body": False}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to start
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(start)
        await send(end)

    return app


def starlette_app() -> Any:
    """Starlette, one Route: `await request.body()`, a JSONResponse."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request: Any) -> JSONResponse:
        await request.body()
        return JSONResponse(ANSWER)

    return Starlette(routes=[Route(PATH, chat, methods=["POST"])])


def fastapi_app() -> Any:
    """FastAPI, one POST route taking `request: Request`, returning a JSONResponse."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    async def chat(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(ANSWER)

    # The annotation is a string here (PEP 563) that FastAPI would resolve in this
    # module's globals, where `Request` is not: give it the class itself.
    chat.__annotations__["request"] = Request
    app.post(PATH)(chat)
    return app


# --- processes ------------------------------------------------------------------------


def start(argv: list[str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server process with `--port N` appended; (process, N) once it listens."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *argv, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    wait_for_port(port, proc, log)
    return proc, port


def uvicorn_argv(factory: str) -> list[str]:
    """functions/chat/run.sh's command line, with an app of this file."""
    return [
        *("-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log", "--no-proxy-headers"),
        *("--timeout-keep-alive", "60", "--app-dir", str(BENCH), "--factory", f"floor:{factory}"),
    ]


def spin() -> subprocess.Popen[bytes]:
    """A busy loop at nice 19: it yields to every other process, but no CPU goes idle, so
    a process that blocks on a socket is woken on a CPU that was not idle, and the two
    ends of a round trip tend to share a CPU (`--spin`)."""
    return subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])


def sched_run_ns(pid: int) -> int:
    """Nanoseconds on a CPU, all threads of `pid` (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except OSError:
            continue  # a thread that just ended
    return total


def wait_quiet(limit_s: float) -> bool:
    """Wait (at most `limit_s`) until the machine is 90 % idle for half a second: other
    people's work shares these cores. False if it stayed busy."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if cpu_idle(0.5) >= 0.9:
            return True
    return not limit_s


# --- the client of rows 1-3: one keep-alive connection, an OpenAI SDK's request --------


def sdk_request(port: int) -> bytes:
    """A POST as the OpenAI Python SDK sends it (its headers, in its order)."""
    head = (
        f"POST {PATH} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Accept-Encoding: gzip, deflate\r\n"
        "Connection: keep-alive\r\n"
        "Accept: application/json\r\n"
        "Content-Type: application/json\r\n"
        "User-Agent: OpenAI/Python 1.109.1\r\n"
        "X-Stainless-Lang: python\r\n"
        "X-Stainless-Package-Version: 1.109.1\r\n"
        "X-Stainless-OS: Linux\r\n"
        "X-Stainless-Arch: x64\r\n"
        "X-Stainless-Runtime: CPython\r\n"
        "X-Stainless-Runtime-Version: 3.13.0\r\n"
        "Authorization: Bearer gw_live_0123456789abcdefghijklmnopqrstuvwxyzABCDEF\r\n"
        "X-Stainless-Async: false\r\n"
        "x-stainless-retry-count: 0\r\n"
        "x-stainless-read-timeout: 600\r\n"
        f"Content-Length: {len(REQUEST_BODY)}\r\n\r\n"
    )
    return head.encode() + REQUEST_BODY


class Client:
    """Requests one at a time on one keep-alive connection; checks each answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.raw = sdk_request(port)
        self.buffer = b""

    def request(self) -> bytes:
        self.sock.sendall(self.raw)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._more()
        head = self.buffer[:end]
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode("latin-1"))
        found = re.search(rb"(?i)content-length: *(\d+)", head)
        length = int(found.group(1)) if found else 0
        while len(self.buffer) < end + 4 + length:
            self._more()
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        return body

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += data

    def close(self) -> None:
        self.sock.close()


# --- the rows -------------------------------------------------------------------------


class Row:
    """One measured operation: `run(n)` does it n times, returning CPU seconds spent."""

    def __init__(self, key: str, label: str, run: Callable[[int], float], scale: int = 1):
        self.key, self.label, self.run, self.scale = key, label, run, scale
        self.samples: list[float] = []  # µs per operation, one per round

    def measure(self, n: int) -> None:
        ops = n * self.scale
        self.samples.append(self.run(ops) / ops * 1e6)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def server_row(
    key: str, label: str, proc: subprocess.Popen[bytes], port: int
) -> tuple[Row, Callable[[], None]]:
    client = Client(port)

    def run(n: int) -> float:
        before = sched_run_ns(proc.pid)
        for _ in range(n):
            client.request()
        return (sched_run_ns(proc.pid) - before) / 1e9

    return Row(key, label, run), client.close


def cpu_loop(op: Callable[[], object]) -> Callable[[int], float]:
    def run(n: int) -> float:
        start = time.process_time()
        for _ in range(n):
            op()
        return time.process_time() - start

    return run


def async_loop(
    loop: asyncio.AbstractEventLoop, op: Callable[[], Awaitable[object]]
) -> Callable[[int], float]:
    async def many(n: int) -> float:
        start = time.process_time()
        for _ in range(n):
            await op()
        return time.process_time() - start

    return lambda n: loop.run_until_complete(many(n))


def new_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """The event loop uvicorn's `--loop auto` would pick: uvloop if installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), "uvloop"


def aiohttp_row(loop: asyncio.AbstractEventLoop, port: int) -> tuple[Row, Callable[[], None]]:
    import aiohttp
    import yarl

    async def make() -> aiohttp.ClientSession:
        # As gatewayz/chat/upstream.py configures its session, URL and timeout.
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=300),
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    session = loop.run_until_complete(make())
    url = yarl.URL(f"http://127.0.0.1:{port}{PATH}")
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=60)
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}

    async def post() -> bytes:
        response = await session.post(url, data=UPSTREAM_BODY, headers=headers, timeout=timeout)
        try:
            return await response.read()
        finally:
            response.release()

    answer = loop.run_until_complete(post())
    assert answer.startswith(b'{"id"'), answer[:200]
    label = f"aiohttp POST ({len(UPSTREAM_BODY)} B) + read ({len(answer)} B)"
    row = Row("4", label, async_loop(loop, post))
    return row, lambda: loop.run_until_complete(session.close())


def provider_client_row(
    loop: asyncio.AbstractEventLoop, port: int
) -> tuple[Row, Callable[[], None]]:
    from gatewayz.chat import upstream

    base_url = f"http://127.0.0.1:{port}"
    limits = upstream.Limits(connect_s=5, read_s=60)
    headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}

    async def post() -> bytes:
        reply = await upstream.post(base_url, PATH, UPSTREAM_BODY, headers, limits)
        try:
            return await reply.read()
        finally:
            await reply.close()

    answer = loop.run_until_complete(post())
    assert answer.startswith(b'{"id"'), answer[:200]
    label = f"gatewayz provider client POST ({len(UPSTREAM_BODY)} B) + read ({len(answer)} B)"
    row = Row("4g", label, async_loop(loop, post))
    return row, lambda: loop.run_until_complete(upstream.close_pool())


def psycopg_rows(url: str) -> tuple[list[Row], Callable[[], None]]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)

    def statement(params: tuple[Any, ...]) -> Callable[[], object]:
        query = "SELECT " + ", ".join(["%s"] * len(params))

        def op() -> object:
            return conn.execute(query, params).fetchone()

        assert op() == params
        return op

    def select_1() -> object:
        return conn.execute("SELECT 1").fetchone()

    rows = [
        Row("5", "psycopg execute + fetchone, SELECT 1 (no params)", cpu_loop(select_1)),
        Row("5a", "psycopg execute + fetchone, 8 params", cpu_loop(statement(RESERVE_PARAMS))),
        Row("5b", "psycopg execute + fetchone, 23 params", cpu_loop(statement(SETTLE_PARAMS))),
    ]
    return rows, conn.close


def redis_rows(url: str) -> tuple[list[Row], Callable[[], None]]:
    import hiredis
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    assert HIREDIS_AVAILABLE, "redis-py does not see hiredis"
    client = redis.Redis.from_url(url)
    sha = client.script_load(SCRIPT)
    words = ("EVALSHA", sha, len(REDIS_KEYS), *REDIS_KEYS, *REDIS_ARGS)
    pool = client.connection_pool
    held = pool.get_connection()

    def raw() -> object:
        held.send_packed_command([hiredis.pack_command(words)])
        return held.read_response()

    def pooled() -> object:  # as gatewayz/ratelimit/redis.py did before 03206bb
        connection = pool.get_connection()
        try:
            connection.send_packed_command([hiredis.pack_command(words)])
            return connection.read_response()
        finally:
            pool.release(connection)

    def evalsha() -> object:
        return client.evalsha(sha, len(REDIS_KEYS), *REDIS_KEYS, *REDIS_ARGS)

    for op in (raw, pooled, evalsha):
        assert op() == [1, 2, 3]
    rows = [
        Row("6", "redis EVALSHA 5 keys 20 args: pack, send, read", cpu_loop(raw)),
        Row("6b", "  the same with the pool's get/release around it", cpu_loop(pooled)),
        Row("6c", "  client.evalsha(...)", cpu_loop(evalsha)),
    ]

    def close() -> None:
        pool.release(held)
        client.close()

    return rows, close


def codec_rows(answer: bytes) -> list[Row]:
    import orjson
    from pydantic import BaseModel

    class Message(BaseModel):
        role: str
        content: str

    class ChatRequest(BaseModel):
        model: str
        messages: list[Message]

    body = orjson.loads(REQUEST_BODY)
    ChatRequest.model_validate(body)
    return [
        Row(
            "7a",
            f"orjson loads + dumps ({len(answer)} B)",
            cpu_loop(lambda: orjson.dumps(orjson.loads(answer))),
            scale=20,
        ),
        Row(
            "7b",
            "pydantic model_validate(chat body dict)",
            cpu_loop(lambda: ChatRequest.model_validate(body)),
            scale=20,
        ),
    ]


def asyncio_rows(loop: asyncio.AbstractEventLoop, name: str) -> list[Row]:
    async def noop() -> None:
        return None

    async def spawn() -> None:
        await asyncio.ensure_future(noop())

    return [
        Row(
            "8a", f"{name}: await asyncio.sleep(0)", async_loop(loop, lambda: asyncio.sleep(0)), 20
        ),
        Row("8b", f"{name}: create a task, await it", async_loop(loop, spawn), 20),
    ]


ECHO = """
import socket, sys
server = socket.create_server(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])))
while True:  # one connection at a time (the first is wait_for_port's probe)
    conn = server.accept()[0]
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := conn.recv(64):
        conn.sendall(data)
    conn.close()
"""


def round_trip_row(port: int) -> tuple[Row, Callable[[], None]]:
    """One byte to an echo process over loopback TCP and back, blocking: what a
    synchronous store call pays beyond its library's code."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def op() -> bytes:
        sock.sendall(b"x")
        return sock.recv(64)

    assert op() == b"x"
    row = Row("9", "a blocking loopback TCP round trip (1 byte, echo process)", cpu_loop(op))
    return row, sock.close


# --- the report -----------------------------------------------------------------------


def speed_ms() -> float:
    """`timeit sum(range(10**6))`: the best of 5, ms (this machine's speed right now)."""
    return min(timeit.repeat("sum(range(10**6))", number=1, repeat=5)) * 1000


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "?"
    found = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    return found.group(1).strip() if found else "?"


def versions() -> str:
    from importlib.metadata import version

    names = ["uvicorn", "httptools", "starlette", "fastapi", "aiohttp", "psycopg"]
    names += ["redis", "hiredis", "orjson", "pydantic"]
    return ", ".join(f"{name} {version(name)}" for name in names)


def psycopg_impl() -> str:
    import psycopg

    return str(psycopg.pq.__impl__)


def report(rows: list[Row], loop_name: str) -> None:
    by = {row.key: row for row in rows}
    print("\n| row | CPU µs per operation | median | min | max |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.key} | {row.label} | {row.median:.1f} | {min(row.samples):.1f} "
            f"| {max(row.samples):.1f} |"
        )
    parts = ["1", "4g", "5a", "5b", "6", "7a", "7b"]  # 4g: the provider client in use
    floor = sum(by[k].median for k in parts)
    best = sum(min(by[k].samples) for k in parts)
    print(f"\nsum of the floor for one completion ({' + '.join(parts)}): {floor:.0f} µs")
    print(
        f"  of the {BUDGET_US:.0f} µs budget that leaves {BUDGET_US - floor:.0f} µs "
        f"({floor / BUDGET_US:.0%} spent by the libraries' minimum); "
        f"from each row's best round: {best:.0f} µs"
    )
    fastapi = floor - by["1"].median + by["3"].median
    print(
        f"  with FastAPI instead of the bare ASGI app (row 3 for row 1): {fastapi:.0f} µs, "
        f"leaving {BUDGET_US - fastapi:.0f} µs (event loop: {loop_name})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="operations per row and round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=5.0,
        metavar="S",
        help="before each round, wait up to S seconds for a 90%% idle machine (0: never)",
    )
    parser.add_argument(
        "--spin",
        action="store_true",
        help="keep every CPU busy during the rounds (a busy loop per CPU at nice 19)",
    )
    args = parser.parse_args()

    before = speed_ms()
    tmp = Path(tempfile.mkdtemp(prefix="gwfloor-"))
    procs: list[subprocess.Popen[bytes]] = []
    closers: list[Callable[[], None]] = []
    busy = 0  # rounds begun on a machine that stayed busy for --quiet seconds
    loop, loop_name = new_loop()
    asyncio.set_event_loop(loop)
    try:
        rows: list[Row] = []
        for key, factory, label in (
            ("1", "asgi_app", "uvicorn + bare ASGI app, server process"),
            ("2", "starlette_app", "uvicorn + Starlette Route + JSONResponse"),
            ("3", "fastapi_app", "uvicorn + FastAPI POST route + JSONResponse"),
        ):
            proc, port = start(uvicorn_argv(factory), tmp / f"{factory}.log")
            procs.append(proc)
            row, close = server_row(key, label, proc, port)
            rows.append(row)
            closers.append(close)
        upstream, upstream_port = start([str(BENCH / "upstream.py")], tmp / "upstream.log")
        procs.append(upstream)
        for make in (aiohttp_row, provider_client_row):
            row, close = make(loop, upstream_port)
            rows.append(row)
            closers.append(close)
        for made, close in (psycopg_rows(args.pg), redis_rows(args.redis)):
            rows += made
            closers.append(close)
        rows += codec_rows(_answer_bytes())
        rows += asyncio_rows(loop, loop_name)
        echo, echo_port = start(["-c", ECHO], tmp / "echo.log")
        procs.append(echo)
        row, close = round_trip_row(echo_port)
        rows.append(row)
        closers.append(close)

        request = sdk_request(0)
        print(
            f"request {len(request)} B ({len(REQUEST_BODY)} B body), answer "
            f"{len(_answer_bytes())} B; warm-up, then {args.rounds} rounds of -n {args.n}",
            file=sys.stderr,
        )
        for row in rows:  # warm-up
            row.run(max(1, args.n // 4) * row.scale)
        for i in range(args.rounds):
            quiet = wait_quiet(args.quiet)
            busy += not quiet
            spinners = [spin() for _ in range(os.cpu_count() or 1)] if args.spin else []
            try:
                for row in rows if i % 2 == 0 else rows[::-1]:
                    row.measure(args.n)
            finally:
                for spinner in spinners:
                    stop(spinner)
            print(
                f"  round {i + 1}/{args.rounds} done{'' if quiet else ' (machine busy)'}",
                file=sys.stderr,
            )
    finally:
        for close in closers:
            close()
        loop.close()
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    after = speed_ms()
    print(
        f"nproc {os.cpu_count()} ({cpu_model()}), python {sys.version.split()[0]}, "
        f"event loop {loop_name}; {versions()} (pq {psycopg_impl()})"
    )
    print(
        f"timeit sum(range(10**6)): {before:.1f} ms at start, {after:.1f} ms at end; "
        f"-n {args.n} (x20 for rows 7-8), median of {args.rounds} rounds, "
        f"{busy} of them begun on a busy machine (--quiet {args.quiet:g})"
        f"{'; every CPU kept busy at nice 19 (--spin)' if args.spin else ''}"
    )
    report(rows, loop_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
