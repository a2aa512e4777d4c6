"""Request-path overhead (bench/README.md): what the gateway adds to a chat completion over
calling the upstream directly, with real PostgreSQL and Redis on localhost.

Three processes: a fast fake upstream (`bench/upstream.py`), the gateway and this script,
the client (raw keep-alive HTTP/1.1 sockets, so the client costs both paths alike and
little). The gateway is, with `--serve function` (the default), the chat function as
deployed: uvicorn started as `functions/chat/run.sh` starts it, with a deployed function's
environment (`AWS_LAMBDA_FUNCTION_NAME`, `KEY_HASH_SECRET`), the client playing the Lambda
Web Adapter (every request carries `x-amzn-request-context`, a fresh request id each, and
`x-amzn-lambda-context`); with `--serve dev`, `gatewayz dev` (`python -m gatewayz.dev.cli
dev`: the local API Gateway stand-in in front of every function's ASGI app, one uvicorn
worker). Each row sends the same request straight to the upstream and through the
gateway, the two interleaved request by request at one client; then at `--concurrency`
clients. The added latency is gateway minus direct, per percentile. `--kinds` adds rows at
one client for other requests: `responses`, `embeddings` and `history` (a chat completion
naming a chat session, so history is injected), each compared with the request the
gateway sends the upstream for it.

Each block also reads the gateway process's CPU time and run-queue wait
(`/proc/<pid>/task/*/schedstat`): other people's test runs share this machine's cores,
and CPU time per request is the figure they disturb least. Before each block the bench
waits (`--quiet`) for an idle machine and VACUUMs the tables each request churns.

Round trips are counted over blocks of `--count` requests: PostgreSQL transactions of
the bench database (`pg_stat_database`; the gateway runs in autocommit, so a statement is
a transaction, cross-checked against the calls of `reserve_credits`/`settle_usage` and
the key lookups), and the commands Redis received from the gateway's own connections
(MONITOR, filtered by the gateway's socket ports). Exits 1 if a budget is missed.

`--breakdown` then runs a gateway whose request-path steps are wrapped in a thread-CPU
clock (this file, `--instrumented-gateway`): the CPU each step costs per request.

`--store-latency-ms 0,1` runs everything once per value with `bench/latency_proxy.py`
between the gateway and its stores (localhost ones: the proxy forwards to 127.0.0.1),
adding that round trip time to each of their round trips, and reports the store round
trips the proxy counted before and after each request's upstream call.

Run: `.venv/bin/python bench/overhead.py` (see `--help`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latency_proxy import WAITS, Proxy, split_trips  # bench/ is this script's sys.path[0]

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench/echo"
PATH = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello from the bench."}]
LIMIT = 1_000_000_000  # requests per minute/day, tokens per minute: never in the way
BUDGET_P50_MS, BUDGET_P99_MS, BUDGET_TTFT_MS = 1.5, 4.0, 1.5
BUDGET_DB, BUDGET_REDIS, BUDGET_RPS, BUDGET_RSS_MB = 3, 1, 600, 90
# The gateway process's CPU time per request (µs): a completion (every kind), a stream.
BUDGET_CPU_US, BUDGET_STREAM_CPU_US = 1000, 1400
# With a store round trip time of 1 ms (--store-latency-ms): one round trip before the
# upstream call, and the TTFT that leaves (issue 11).
BUDGET_TTFT_STORE_MS, BUDGET_TRIPS_BEFORE = 2.5, 1
TRIP_SAMPLES = 50  # requests per block counted by the latency proxy, one at a time
KINDS = ("chat", "responses", "embeddings", "history")
EMBED_MODEL = "bench/embed"
FUNCTION = "gatewayz-chat"  # AWS_LAMBDA_FUNCTION_NAME of the chat function
# The chat session of the `history` kind: a system prompt and earlier turns alike the
# turns each bench request saves, so what is injected is the same whatever the session's
# length; `history.max_tokens` keeps it to a few messages.
SYSTEM = {"role": "system", "content": "You are the bench's echo."}
ANSWER = {"role": "assistant", "content": "Hello from the bench upstream, at once."}
HISTORY_TURNS, HISTORY_MAX_TOKENS = 3, 100


# --- the client: one keep-alive HTTP/1.1 connection per simulated client -------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One response: seconds until the whole of it, and until its first content token."""

    total: float
    ttft: float | None


class Adapter:
    """The Lambda Web Adapter's part: the headers it adds to each request it forwards to
    the function, `x-amzn-request-context` (API Gateway's REST requestContext, a fresh
    requestId each) and `x-amzn-lambda-context` (the invocation; its deadline far ahead)."""

    def __init__(self) -> None:
        self.last_id = ""
        self.templates: dict[bytes, tuple[bytes, bytes, bytes]] = {}
        now = time.time()
        lambda_context = {
            "request_id": str(uuid.uuid4()),
            "deadline": int((now + 86400) * 1000),
            "invoked_function_arn": f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}",
            "xray_trace_id": None,
            "client_context": None,
            "identity": None,
            "env_config": {
                "function_name": FUNCTION,
                "memory": 1024,
                "version": "$LATEST",
                "log_stream": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
                "log_group": f"/aws/lambda/{FUNCTION}",
            },
        }
        self.lambda_header = b"x-amzn-lambda-context: " + json.dumps(lambda_context).encode()

    def _template(self, path: bytes) -> tuple[bytes, bytes, bytes]:
        """The context header of `path` cut where the request id and time go."""
        route = path.decode()
        context = {
            "resourceId": "a1b2c3",
            "resourcePath": route,
            "httpMethod": "POST",
            "extendedRequestId": "EXTENDED=",
            "requestTime": "02/Dec/2026:22:00:00 +0000",
            "path": route,  # a custom domain's base path mapping: no stage in it
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "v1",
            "domainPrefix": "api",
            "requestTimeEpoch": 1,
            "requestId": "REQUEST-ID",
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": "203.0.113.7",
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "gatewayz-bench",
                "user": None,
            },
            "domainName": "api.gatewayz.example",
            "deploymentId": "d1e2f3",
            "apiId": "a9b8c7d6e5",
        }
        text = json.dumps(context, separators=(",", ":"))
        head, rest = text.split('"requestTimeEpoch":1', 1)
        middle, tail = rest.split("REQUEST-ID", 1)
        head = "x-amzn-request-context: " + head + '"requestTimeEpoch":'
        return head.encode(), middle.encode(), tail.encode()

    def wrap(self, raw: bytes) -> bytes:
        """`raw` with the adapter's headers after its request line."""
        line = raw.index(b"\r\n") + 2
        path = raw[: line - 2].split(b" ", 2)[1]
        parts = self.templates.get(path)
        if parts is None:
            parts = self.templates[path] = self._template(path)
        self.last_id = request_id = str(uuid.uuid4())
        epoch = b"%d" % (time.time_ns() // 1_000_000)
        context = parts[0] + epoch + parts[1] + request_id.encode() + parts[2]
        return b"".join((raw[:line], context, b"\r\n", self.lambda_header, b"\r\n", raw[line:]))


class Connection:
    """A keep-alive connection sending prepared requests, one at a time (through the
    `adapter`, when it plays the Lambda Web Adapter); `head` is the last response's head,
    lowercase."""

    def __init__(self, port: int, adapter: Adapter | None = None) -> None:
        self.port = port
        self.adapter = adapter
        self.buffer = b""
        self.head = ""
        self.sock = self._open()

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _more(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += data

    def request(self, raw: bytes) -> Sample:
        try:
            return self._request(raw)
        except (ConnectionResetError, BrokenPipeError):
            if self.buffer:
                raise
            # uvicorn closes a connection idle for 5 s (between blocks): open a new one.
            self.sock.close()
            self.sock = self._open()
            return self._request(raw)

    def _request(self, raw: bytes) -> Sample:
        if self.adapter is not None:
            raw = self.adapter.wrap(raw)
        start = time.perf_counter()
        self.sock.sendall(raw)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._more()
        self.head = head = self.buffer[:end].decode("latin-1").lower()
        self.buffer = self.buffer[end + 4 :]
        if "transfer-encoding: chunked" in head:
            ttft = self._chunked(start)
            body = b""
        else:
            found = re.search(r"content-length: *(\d+)", head)
            length = int(found.group(1)) if found else 0
            while len(self.buffer) < length:
                self._more()
            body, self.buffer, ttft = self.buffer[:length], self.buffer[length:], None
        if not head.startswith("http/1.1 200"):
            raise RuntimeError(f"{head.splitlines()[0]}: {body[:300]!r}")
        return Sample(time.perf_counter() - start, ttft)

    def _chunked(self, start: float) -> float | None:
        """Read a chunked body to its end; return when its first content token came."""
        ttft, pending = None, b""
        while True:
            while (eol := self.buffer.find(b"\r\n")) < 0:
                self._more()
            size = int(self.buffer[:eol].split(b";")[0], 16)
            while len(self.buffer) < eol + size + 4:
                self._more()
            data = self.buffer[eol + 2 : eol + 2 + size]
            self.buffer = self.buffer[eol + size + 4 :]
            if size == 0:
                return ttft
            if ttft is None:
                *events, pending = (pending + data).split(b"\n\n")
                if any(_has_content(event) for event in events):
                    ttft = time.perf_counter() - start

    def close(self) -> None:
        self.sock.close()


def _has_content(event: bytes) -> bool:
    if not event.startswith(b"data: {") or b'"content"' not in event:
        return False
    for choice in json.loads(event[6:]).get("choices") or ():
        if (choice.get("delta") or {}).get("content"):
            return True
    return False


def request_bytes(*, stream: bool, key: str | None = None) -> bytes:
    body: dict[str, object] = {"model": MODEL, "messages": MESSAGES}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return post_bytes(PATH, body, key)


def kind_bytes(kind: str, key: str, session_id: str, injected: int) -> tuple[bytes, bytes]:
    """(straight to the upstream, through the gateway) requests of one kind: the direct
    one is what the gateway sends the upstream for the other. `injected`: the history
    messages the gateway puts in front of a `history` request's own."""
    if kind == "responses":  # served over the upstream's chat completions
        text = MESSAGES[0]["content"]
        gateway = post_bytes("/v1/responses", {"model": MODEL, "input": text}, key)
        return request_bytes(stream=False), gateway
    if kind == "embeddings":
        body = {"model": EMBED_MODEL, "input": MESSAGES[0]["content"]}
        direct = post_bytes("/v1/embeddings", body | {"encoding_format": "float"})
        return direct, post_bytes("/v1/embeddings", body, key)
    if kind == "history":
        body = {
            "model": MODEL,
            "messages": MESSAGES,
            "session_id": session_id,
            "history": {"max_tokens": HISTORY_MAX_TOKENS},
        }
        turns = [*MESSAGES, ANSWER] * (injected // 2 + 1)
        earlier = [SYSTEM, *turns[len(turns) - (injected - 1) :]] if injected else []
        direct = post_bytes(PATH, {"model": MODEL, "messages": [*earlier, *MESSAGES]})
        return direct, post_bytes(PATH, body, key)
    raise ValueError(f"unknown kind {kind!r}")


def post_bytes(path: str, body: dict[str, object], key: str | None = None) -> bytes:
    """A whole HTTP/1.1 POST of `body` as JSON (with the key, if any)."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nuser-agent: gatewayz-bench\r\n"
    )
    if key is not None:
        head += f"authorization: Bearer {key}\r\n"
    return head.encode() + b"\r\n" + payload


def interleaved(targets: list[tuple[Connection, list[bytes]]], n: int) -> list[list[Sample]]:
    """n requests to each target at one client, alternating targets (and who goes first)
    request by request, so a busy moment of the machine hits both paths alike."""
    out: list[list[Sample]] = [[] for _ in targets]
    order = list(range(len(targets)))
    for i in range(n):
        for j in order if i % 2 == 0 else order[::-1]:
            conn, requests = targets[j]
            out[j].append(conn.request(requests[i % len(requests)]))
    return out


def concurrent(
    port: int, raw: bytes, n: int, clients: int, adapter: Adapter | None = None
) -> tuple[list[Sample], float]:
    """n requests from `clients` threads, each with its own connection; (samples, seconds)."""
    counter = itertools.count()
    samples: list[Sample] = []
    errors: list[BaseException] = []
    conns = [Connection(port, adapter) for _ in range(clients)]
    for conn in conns:
        conn.request(raw)  # the connection is open and warm before the clock starts
    gate = threading.Barrier(clients + 1)

    def client(conn: Connection) -> None:
        mine = []
        gate.wait()
        try:
            while next(counter) < n:
                mine.append(conn.request(raw))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        samples.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    for thread in threads:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - start
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    return samples, took


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- the database: a fresh one, migrated, seeded, with the bench's model and keys ------


@dataclass(frozen=True)
class Fixture:
    url: str
    account_id: str
    key: str  # the warm key
    cold_keys: list[str]  # each used once: every request misses the auth cache
    session_id: str  # the `history` kind's chat session


def create_database(server: str, cold: int) -> Fixture:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from gatewayz import config, db, migrate, seed
    from gatewayz.billing import credits
    from gatewayz.identity import accounts, keys

    name = f"gwbench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # Count calls of plpgsql functions (reserve_credits, settle_usage) in this database.
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET track_functions = 'pl'").format(sql.Identifier(name))
        )
    url = make_conninfo(server, dbname=name)
    with db.connect(url) as conn:
        migrate.apply(conn, ROOT / "infra" / "migrations")
        seed.apply(conn, ROOT / "infra" / "seed")
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                """INSERT INTO models (id, name, context_length, max_output_tokens)
                   VALUES (%s, 'Bench: Echo', 8192, 1024)""",
                (MODEL,),
            )
            cur.execute(
                """INSERT INTO model_offers (model_id, provider, provider_model_id, priority,
                                             input_price, output_price)
                   VALUES (%s, 'openrouter', 'bench/echo', 10, %s, %s)""",
                (MODEL, Decimal(1), Decimal(2)),
            )
            # An embeddings model: output modality `embeddings`, priced per input token.
            cur.execute(
                """INSERT INTO models (id, name, context_length, output_modalities)
                   VALUES (%s, 'Bench: Embed', 8192, '{embeddings}')""",
                (EMBED_MODEL,),
            )
            cur.execute(
                """INSERT INTO model_offers (model_id, provider, provider_model_id, priority,
                                             input_price, output_price)
                   VALUES (%s, 'openrouter', %s, 10, %s, 0)""",
                (EMBED_MODEL, EMBED_MODEL, Decimal("0.02")),
            )
            owner = accounts.create_personal(
                cur, email=f"bench-{uuid.uuid4().hex[:12]}@example.com", plan_id="payg"
            )
            credits.post(cur, account_id=owner.account_id, kind="admin_grant", amount_nanos=10**15)
            made = [
                keys.create(
                    cur,
                    account_id=owner.account_id,
                    user_id=owner.user_id,
                    name=f"bench {i}",
                    pepper=config.key_hash_secret(),
                )
                for i in range(1 + cold)
            ]
            cur.execute(
                """UPDATE api_keys SET limits_set_by_admin = true, requests_per_minute = %s,
                          requests_per_day = %s, tokens_per_minute = %s,
                          concurrent_requests = 1000
                    WHERE account_id = %s""",
                (LIMIT, LIMIT, LIMIT, owner.account_id),
            )
            session_id = history_session(cur, owner.account_id, owner.user_id)
    return Fixture(url, owner.account_id, made[0].secret, [k.secret for k in made[1:]], session_id)


def history_session(cur: Any, account_id: str, user_id: str) -> str:
    """A chat session of the key's user: a system prompt and `HISTORY_TURNS` turns."""
    from psycopg.types.json import Jsonb

    from gatewayz.history import records

    row = cur.execute(
        "INSERT INTO chat_sessions (account_id, user_id, title) VALUES (%s, %s, 'bench')"
        " RETURNING id",
        (account_id, user_id),
    ).fetchone()
    messages = [SYSTEM, *([*MESSAGES, ANSWER] * HISTORY_TURNS)]
    cur.execute(
        "SELECT chat_messages_append(%s, %s, %s, NULL, %s)",
        (row[0], account_id, user_id, Jsonb([records.stored(m) for m in messages])),
    )
    return str(row[0])


def drop_database(server: str, url: str) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# --- the processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start:\n{log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.05)


def start_upstream(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = tmp / "upstream.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "upstream.py"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, proc, log)
    return proc, port


def gateway_env(
    args: argparse.Namespace, fixture: Fixture, upstream: int, metrics: str, home: Path
) -> dict:
    """The gateway's environment: `gatewayz dev`'s, or (`--serve function`) what the chat
    function has deployed (template.yaml) and run.sh's PYTHONPATH (the layer)."""
    from gatewayz import config

    ours = {name.upper() for name in config.Settings.model_fields} | {"AWS_LAMBDA_FUNCTION_NAME"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    paths = [args.gateway_path]
    if args.serve == "function":
        paths.append(str(ROOT / "layers" / "common"))  # the layer, as Lambda mounts it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, env.get("PYTHONPATH")]))
    env |= {
        "DATABASE_URL": fixture.url,
        "REDIS_URL": args.redis_url,
        "OPENROUTER_API_KEY": "x",
        "OPENROUTER_BASE_URL": f"http://127.0.0.1:{upstream}/v1",
        "LOG_LEVEL": "WARNING",
        "GATEWAYZ_METRICS": metrics,
    }
    if args.serve == "dev":
        return env | {
            "GATEWAYZ_HOME": str(home),
            "GATEWAYZ_ROOT": str(ROOT),
            "GATEWAYZ_DEV_JOBS": "off",  # no scheduled job adds round trips to the counts
        }
    # Inside Lambda (config.in_lambda) nothing local applies: no state directory, no
    # embedded database, no in-memory rate limit store; the key pepper must be set (the
    # one the fixture's keys were hashed with, generated under GATEWAYZ_HOME).
    return env | {
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "POWERTOOLS_SERVICE_NAME": FUNCTION,
        "KEY_HASH_SECRET": config.key_hash_secret().decode(),
    }


def start_gateway(serve: str, env: dict, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """On a free port: `gatewayz dev` (migrate + seed are no-ops here, then uvicorn), or
    the chat function exactly as functions/chat/run.sh starts it."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            gateway_command(serve, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env | {"PORT": str(port)},
            cwd=ROOT / "functions" / "chat" if serve == "function" else ROOT,
        )
    wait_for_port(port, proc, log)
    return proc, port


def gateway_command(serve: str, port: int) -> list[str]:
    if serve == "dev":
        return [sys.executable, "-m", "gatewayz.dev.cli", "dev", "--port", str(port)]
    return [sys.executable, "-m", "uvicorn", *run_sh_options(port), "app:app"]


def run_sh_options(port: int) -> list[str]:
    """uvicorn's options in functions/chat/run.sh (checked against it at start)."""
    options = ["--loop", "uvloop", "--host", "127.0.0.1", "--port", "PORT", "--no-access-log",
               "--no-proxy-headers", "--timeout-keep-alive", "60"]  # fmt: skip
    script = (ROOT / "functions" / "chat" / "run.sh").read_text()
    words = " ".join(script.replace("\\\n", " ").split())
    expected = " ".join(options).replace("PORT", '"${PORT:-8080}"')
    if f"python -m uvicorn {expected} app:app" not in words:
        raise RuntimeError("functions/chat/run.sh changed: update run_sh_options")
    return [str(port) if option == "PORT" else option for option in options]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def memory_mb(pid: int) -> tuple[float, float]:
    """(peak RSS, current RSS) of a process, MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {k: int(v.split()[0]) for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(.*)$", status, re.M)}
    return kb["VmHWM"] / 1024, kb["VmRSS"] / 1024


def sched_ns(pid: int) -> tuple[int, int]:
    """(on a CPU, runnable but waiting for a CPU) nanoseconds, all threads of `pid`."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue  # a thread that just ended
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def cpu_idle(seconds: float) -> float:
    """The fraction of all CPUs idle over the next `seconds`."""

    def read() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    idle0, total0 = read()
    time.sleep(seconds)
    idle1, total1 = read()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(limit_s: float) -> None:
    """Wait (at most `limit_s`) until the machine is 90 % idle for a second: other people's
    test runs share these cores."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if cpu_idle(1.0) >= 0.9:
            return
    if limit_s:
        print(f"  (the machine stayed busy for {limit_s:.0f} s; measuring anyway)", file=sys.stderr)


def client_ports(pid: int, server_port: int) -> set[int]:
    """Local ports of `pid`'s TCP connections to `server_port` on this host."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# --- round trips ----------------------------------------------------------------------


class PgCounters:
    """Transactions of the bench database, with the calls that explain them.

    Statistics reach `pg_stat_database` when a backend flushes them: in PostgreSQL 15
    when it goes idle, or, if it flushed less than a second before, 10 s later
    (PGSTAT_IDLE_INTERVAL). So a reading waits until they stood still for `SETTLE_S`.
    Transactions are read from a connection to another database; the per-database views
    need one connection to the bench database, whose single read per snapshot is one
    transaction of its own, subtracted (`PROBE_XACTS`).
    """

    PROBE_XACTS = 1
    SETTLE_S = 11.0

    def __init__(self, server: str, url: str) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        self.name = conninfo_to_dict(url)["dbname"]
        self.watch = psycopg.connect(server, autocommit=True)
        self.probe = psycopg.connect(url, autocommit=True)

    def _xacts(self) -> int:
        row = self.watch.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (self.name,),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def read(self) -> dict[str, int]:
        last, still_since = self._xacts(), time.monotonic()
        while time.monotonic() - still_since < self.SETTLE_S:
            time.sleep(0.5)
            now = self._xacts()
            if now != last:
                last, still_since = now, time.monotonic()
        # total_time: ms spent inside the function on the server (its commit not included).
        row = self.probe.execute(
            """SELECT
                 (SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
                   WHERE funcname = 'reserve_credits'),
                 (SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
                   WHERE funcname = 'settle_usage'),
                 (SELECT idx_scan FROM pg_stat_user_indexes
                   WHERE indexrelname = 'api_key_secrets_pkey'),
                 (SELECT coalesce(sum(total_time), 0) FROM pg_stat_user_functions
                   WHERE funcname = 'reserve_credits'),
                 (SELECT coalesce(sum(total_time), 0) FROM pg_stat_user_functions
                   WHERE funcname = 'settle_usage')"""
        ).fetchone()
        assert row is not None
        return {
            "xacts": last,
            "reserve": int(row[0]),
            "settle": int(row[1]),
            "lookup": int(row[2]),
            "reserve_us": round(float(row[3]) * 1000),
            "settle_us": round(float(row[4]) * 1000),
        }

    def vacuum(self) -> None:
        """Clear the dead rows every request leaves (a hold, two account row versions), as
        autovacuum would. This server runs with autovacuum off; without this, the
        `count(*)` of live holds in `reserve_credits` slows down request after request."""
        self.probe.execute("VACUUM credit_holds, accounts, api_keys")

    def close(self) -> None:
        self.watch.close()
        self.probe.close()


class RedisMonitor:
    """Every command Redis receives while it runs (MONITOR), to attribute by client."""

    LINE = re.compile(r'^\+[\d.]+ \[\d+ [^\]]*:(\d+)\] "([^"]+)"')

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.sendall(b"MONITOR\r\n")
        self.lines: list[str] = []
        self.marker = f"bench-marker-{uuid.uuid4().hex}"
        self.done = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        if not self.ready.wait(5):
            raise RuntimeError("redis MONITOR did not start")

    def _read(self) -> None:
        buffer = b""
        while not self.done.is_set():
            data = self.sock.recv(262144)
            if not data:
                return
            buffer += data
            *lines, buffer = buffer.split(b"\r\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                if text == "+OK":
                    self.ready.set()
                elif self.marker in text:
                    self.done.set()
                else:
                    self.lines.append(text)

    def stop(self, client: object) -> list[tuple[int, str]]:
        """(client port, command) of every command seen; `client` sends the end marker."""
        client.echo(self.marker)  # type: ignore[attr-defined]
        if not self.done.wait(30):
            raise RuntimeError("redis MONITOR lost the end marker")
        self.sock.close()
        seen = []
        for line in self.lines:
            match = self.LINE.match(line)
            if match:
                seen.append((int(match.group(1)), match.group(2).upper()))
        return seen


@dataclass
class Trips:
    """Round trips per request over one block."""

    requests: int
    db: float
    reserve: float
    settle: float
    lookup: float
    other: float  # transactions none of the three explain
    redis: float
    redis_executed: float  # INFO total_commands_processed: every client, Lua's own calls too
    redis_commands: dict[str, int] = field(default_factory=dict)
    # The server's time inside each call of the two functions (µs; 0: none called).
    reserve_us: float = 0.0
    settle_us: float = 0.0


def count_trips(
    pg: PgCounters,
    redis_url: str,
    gateway_pid: int,
    blocks: dict[str, list[tuple[Connection, bytes]]],
) -> dict[str, Trips]:
    """Round trips per request of each block, the blocks run one after the other."""
    import redis

    client = redis.Redis.from_url(redis_url)
    port = _redis_port(client)
    out = {}
    before = pg.read()
    for name, send in blocks.items():
        monitor = RedisMonitor(client.connection_pool.connection_kwargs["host"], port)
        info = int(client.info("stats")["total_commands_processed"])
        for conn, raw in send:
            conn.request(raw)
        ports = client_ports(gateway_pid, port)
        seen = monitor.stop(client)
        # Between the two INFO readings this script sent 2 commands: INFO and ECHO.
        info_after = int(client.info("stats")["total_commands_processed"]) - 2
        after = pg.read()
        n = len(send)
        ours: dict[str, int] = {}
        for client_port, command in seen:
            if client_port in ports:
                ours[command] = ours.get(command, 0) + 1
        out[name] = Trips(
            requests=n,
            db=(after["xacts"] - before["xacts"] - PgCounters.PROBE_XACTS) / n,
            reserve=(after["reserve"] - before["reserve"]) / n,
            settle=(after["settle"] - before["settle"]) / n,
            lookup=(after["lookup"] - before["lookup"]) / n,
            other=(
                after["xacts"]
                - before["xacts"]
                - PgCounters.PROBE_XACTS
                - sum(after[k] - before[k] for k in ("reserve", "settle", "lookup"))
            )
            / n,
            redis=sum(ours.values()) / n,
            redis_executed=(info_after - info) / n,
            redis_commands=ours,
            reserve_us=_per_call(after, before, "reserve"),
            settle_us=_per_call(after, before, "settle"),
        )
        before = after
    client.close()
    return out


def _per_call(after: dict[str, int], before: dict[str, int], name: str) -> float:
    calls = after[name] - before[name]
    return (after[f"{name}_us"] - before[f"{name}_us"]) / calls if calls else 0.0


def _redis_port(client: object) -> int:
    return int(client.connection_pool.connection_kwargs.get("port", 6379))  # type: ignore[attr-defined]


# --- one gateway configuration ---------------------------------------------------------


@dataclass
class Row:
    clients: int
    what: str
    direct: list[float]
    gateway: list[float]
    cpu_us: float  # the gateway process's time on a CPU, per request
    wait_us: float  # ... and waiting for one (run queue: the machine was busy)
    direct_s: float | None = None  # wall time of a concurrent block
    gateway_s: float | None = None

    def added(self, q: float) -> float:
        return pct(self.gateway, q) - pct(self.direct, q)


@dataclass
class Result:
    metrics: str
    serve: str
    rows: list[Row] = field(default_factory=list)
    trips: dict[str, Trips] = field(default_factory=dict)
    first_ms: tuple[float, float] = (0.0, 0.0)
    peak_mb: float = 0.0
    rss_mb: float = 0.0
    emf_lines: int = 0
    store_ms: float | None = None  # the RTT the latency proxy added; None: no proxy
    # Store round trips a request, (before, after) the upstream call, per block and store.
    store_trips: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    proxy_late_us: float = 0.0  # how late the proxy's delayed writes were, p50
    believed: str = ""  # how the adapter's headers were seen to be believed (function)

    @property
    def label(self) -> str:
        label = f"--serve {self.serve}, GATEWAYZ_METRICS={self.metrics}"
        if self.store_ms is None:
            return label
        return f"{label}, store RTT +{self.store_ms:g} ms"

    def row(self, clients: int, what: str) -> Row:
        return next(r for r in self.rows if r.clients == clients and r.what == what)


def run_config(args: argparse.Namespace, fixture: Fixture, upstream: int, metrics: str,
               tmp: Path, home: Path, store_ms: float | None = None) -> Result:  # fmt: skip
    result = Result(metrics, args.serve, store_ms=store_ms)
    log = tmp / f"gateway-metrics-{metrics}-{store_ms}.log"
    env = gateway_env(args, fixture, upstream, metrics, home)
    # As deployed, the client plays the Lambda Web Adapter on every request.
    adapter = Adapter() if args.serve == "function" else None
    proxy = None
    if store_ms is not None:
        proxy, env = start_proxy(store_ms, fixture, args.redis_url, upstream, env)
        # Both paths reach the upstream through the proxy's undelayed watch route, so its
        # hop cancels out of "added" and the proxy sees when each upstream call starts.
        upstream = proxy.ports["upstream"]
    proc, port = start_gateway(args.serve, env, log)
    print(f"[{result.label}] gateway pid {proc.pid} on :{port}", file=sys.stderr)
    pg = PgCounters(args.pg_server, fixture.url)
    try:
        completion, stream = request_bytes(stream=False), request_bytes(stream=True)
        gw_completion = request_bytes(stream=False, key=fixture.key)
        gw_stream = request_bytes(stream=True, key=fixture.key)
        # The first requests of a fresh process pay for what was deferred: settings,
        # connections, the catalog, the Lua script, lazily imported modules.
        gw = Connection(port, adapter)
        if proxy:
            proxy.reset()
        mark = time.monotonic_ns()
        first = gw.request(gw_completion).total
        if adapter:
            result.believed = believed(gw, adapter)
        if proxy:
            time.sleep(0.05)  # the first settle
            trips = proxy.stats()["trips"]
            result.store_trips["first request (connections opened)"] = split_trips(trips, [mark])  # type: ignore[arg-type]
        first_stream = gw.request(gw_stream).ttft or 0.0
        result.first_ms = (first * 1000, first_stream * 1000)
        up = Connection(upstream)
        interleaved([(up, [completion, stream]), (gw, [gw_completion, gw_stream])], args.warmup)
        concurrent(port, gw_completion, args.warmup, args.concurrency, adapter)
        concurrent(port, gw_stream, args.warmup, args.concurrency, adapter)
        kinds = {k: kind_requests(k, fixture, gw) for k in args.kinds if k != "chat"}
        for direct_raw, gateway_raw in kinds.values():
            interleaved([(up, [direct_raw]), (gw, [gateway_raw])], args.warmup)

        half = args.cold
        cold_latency = [request_bytes(stream=False, key=k) for k in fixture.cold_keys[:half]]
        cold_count = [
            request_bytes(stream=False, key=k) for k in fixture.cold_keys[half : 2 * half]
        ]
        count = args.count
        if proxy:
            cold_trips = [request_bytes(stream=False, key=k) for k in fixture.cold_keys[2 * half :]]
            result.store_trips |= store_trips(proxy, gw, {
                "completion, warm auth": [gw_completion] * TRIP_SAMPLES,
                "stream, warm auth": [gw_stream] * TRIP_SAMPLES,
                "completion, cold auth": cold_trips,
            })  # fmt: skip
        pg.vacuum()
        result.trips = count_trips(
            pg,
            args.redis_url,
            proxy.process.pid if proxy else proc.pid,  # whose connections reach Redis
            {
                "completion, warm auth": [(gw, gw_completion)] * count,
                "stream, warm auth": [(gw, gw_stream)] * count,
                "completion, cold auth": [(gw, raw) for raw in cold_count],
            }
            | {f"{kind}, warm auth": [(gw, raw)] * count for kind, (_, raw) in kinds.items()},
        )

        def block(n: int) -> Callable[[], tuple[float, float]]:
            """Mark the gateway's CPU now; the returned call gives (on-CPU, waiting) µs a
            request since. Before, wait (`--quiet`) for the machine to be idle."""
            pg.vacuum()
            wait_quiet(args.quiet)
            mark = sched_ns(proc.pid)
            return lambda: tuple(
                (b - a) / n / 1000 for a, b in zip(mark, sched_ns(proc.pid), strict=True)
            )  # type: ignore[return-value]

        print(f"[metrics={metrics}] 1 client", file=sys.stderr)
        n, c = args.requests, args.concurrency
        cpu = block(n)
        direct, through = interleaved([(up, [completion]), (gw, [gw_completion])], n)
        result.rows.append(Row(1, "completion", _totals(direct), _totals(through), *cpu()))
        cpu = block(len(cold_latency))
        direct, through = interleaved([(up, [completion]), (gw, cold_latency)], len(cold_latency))
        result.rows.append(
            Row(1, "completion, cold auth", _totals(direct), _totals(through), *cpu())
        )
        cpu = block(n)
        direct, through = interleaved([(up, [stream]), (gw, [gw_stream])], n)
        used = cpu()
        result.rows.append(Row(1, "stream: first token", _ttfts(direct), _ttfts(through), *used))
        result.rows.append(Row(1, "stream: whole", _totals(direct), _totals(through), *used))
        for kind, (direct_raw, gateway_raw) in kinds.items():
            cpu = block(n)
            direct, through = interleaved([(up, [direct_raw]), (gw, [gateway_raw])], n)
            result.rows.append(Row(1, kind, _totals(direct), _totals(through), *cpu()))

        print(f"[metrics={metrics}] {c} clients", file=sys.stderr)
        wait_quiet(args.quiet)
        d, d_s = concurrent(upstream, completion, n, c)
        cpu = block(n + c)  # `concurrent` sends one request per connection before the clock
        g, g_s = concurrent(port, gw_completion, n, c, adapter)
        result.rows.append(Row(c, "completion", _totals(d), _totals(g), *cpu(), d_s, g_s))
        wait_quiet(args.quiet)
        d, d_s = concurrent(upstream, stream, n, c)
        cpu = block(n + c)
        g, g_s = concurrent(port, gw_stream, n, c, adapter)
        result.rows.append(Row(c, "stream: first token", _ttfts(d), _ttfts(g), *cpu(), d_s, g_s))
        result.peak_mb, result.rss_mb = memory_mb(proc.pid)
        if adapter:  # the last request's usage row carries API Gateway's request id
            result.believed += "; " + usage_row_of(fixture, adapter)
        up.close()
        gw.close()
        if proxy:
            result.proxy_late_us = float(proxy.stats()["late_us_p50"])  # type: ignore[arg-type]
    finally:
        pg.close()
        stop(proc)
        if proxy:
            proxy.stop()
    result.emf_lines = sum(1 for line in log.read_text().splitlines() if '"_aws"' in line)
    return result


def kind_requests(kind: str, fixture: Fixture, gw: Connection) -> tuple[bytes, bytes]:
    """(direct, gateway) requests of `kind`; for `history`, one request first through the
    gateway tells how many messages it injects (`x-history-messages`), the rest of the
    direct request's messages."""
    injected = 0
    if kind == "history":
        gw.request(kind_bytes(kind, fixture.key, fixture.session_id, 0)[1])
        found = re.search(r"^x-history-messages: *(\d+)", gw.head, re.M)
        if not found or not int(found.group(1)):
            raise RuntimeError(f"no history was injected:\n{gw.head}")
        injected = int(found.group(1))
    return kind_bytes(kind, fixture.key, fixture.session_id, injected)


def believed(gw: Connection, adapter: Adapter) -> str:
    """Check that the function took the adapter's request id as its own (`x-request-id`)."""
    want = "req_" + adapter.last_id.replace("-", "")
    found = re.search(r"^x-request-id: *(\S+)", gw.head, re.M)
    if not found or found.group(1) != want:
        raise RuntimeError(
            f"the function did not believe x-amzn-request-context: x-request-id "
            f"{found.group(1) if found else None}, sent requestId {adapter.last_id}"
        )
    return f"x-request-id {want} (the adapter's requestId)"


def usage_row_of(fixture: Fixture, adapter: Adapter) -> str:
    """The usage row of the adapter's last request, by API Gateway's request id."""
    import psycopg

    request_id = "req_" + adapter.last_id.replace("-", "")
    deadline = time.monotonic() + 10  # a stream is settled after its last byte
    with psycopg.connect(fixture.url, autocommit=True) as conn:
        while True:
            found = conn.execute(
                "SELECT endpoint FROM usage_records WHERE request_id = %s", (request_id,)
            ).fetchone()
            if found is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        row = conn.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM usage_records"
        ).fetchone()
    if found is None or row is None:
        raise RuntimeError(f"no usage row has request id {request_id}")
    return f"usage row {request_id} ({found[0]}); {row[0]} usage rows, {row[1]} request ids"


def start_proxy(
    store_ms: float, fixture: Fixture, redis_url: str, upstream: int, env: dict
) -> tuple[Proxy, dict]:
    """A latency proxy in front of PostgreSQL and Redis (and watching the upstream), and
    the gateway's environment pointed at it."""
    from urllib.parse import urlsplit, urlunsplit

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    pg = conninfo_to_dict(fixture.url)
    redis = urlsplit(redis_url)
    proxy = Proxy(
        store_ms,
        forward={"postgres": int(pg.get("port") or 5432), "redis": redis.port or 6379},
        watch={"upstream": upstream},
    )
    ports = proxy.ports
    userinfo, at, _ = redis.netloc.rpartition("@")
    redis_at = redis._replace(netloc=f"{userinfo}{at}127.0.0.1:{ports['redis']}")
    return proxy, env | {
        "DATABASE_URL": make_conninfo(fixture.url, host="127.0.0.1", port=str(ports["postgres"])),
        "REDIS_URL": urlunsplit(redis_at),
        "OPENROUTER_BASE_URL": f"http://127.0.0.1:{ports['upstream']}/v1",
    }


def store_trips(
    proxy: Proxy, conn: Connection, blocks: dict[str, list[bytes]]
) -> dict[str, dict[str, tuple[float, float]]]:
    """Per block, the store round trips a request makes before and after its upstream call,
    as the proxy saw them: requests one at a time, each left to settle before the next."""
    out = {}
    for name, raws in blocks.items():
        time.sleep(0.1)
        proxy.reset()
        marks = []
        for raw in raws:
            marks.append(time.monotonic_ns())
            conn.request(raw)
            time.sleep(0.02)  # settling (after a stream's last byte) ends before the next
        out[name] = split_trips(proxy.stats()["trips"], marks)  # type: ignore[arg-type]
    return out


def _totals(samples: list[Sample]) -> list[float]:
    return [s.total for s in samples]


def _ttfts(samples: list[Sample]) -> list[float]:
    if any(s.ttft is None for s in samples):
        raise RuntimeError("a stream had no content chunk")
    return [s.ttft for s in samples if s.ttft is not None]


# --- where the gateway's CPU goes (`--breakdown`) --------------------------------------

# (module, attribute, label): steps of the request path, timed in the gateway process by
# its thread's CPU clock around each call. Inclusive; the report subtracts what nests.
STEPS = [
    ("gatewayz.dev.local", "LocalGateway.__call__", "local"),
    ("fastapi.applications", "FastAPI.__call__", "app"),
    ("gatewayz.http", "GatewayMiddleware.__call__", "middleware"),
    ("gatewayz.chat.completions", "complete", "complete"),
    ("gatewayz.chat.request", "parse", "parse"),
    ("gatewayz.identity.auth", "authenticate", "authenticate"),
    ("gatewayz.config", "key_hash_secret", "pepper"),
    ("gatewayz.chat.catalog", "models", "catalog"),
    ("gatewayz.chat.admission", "reserve", "admission"),
    ("gatewayz.db", "execute", "db_execute"),
    ("gatewayz.billing.credits", "reserve", "reserve"),
    ("gatewayz.chat.routing", "first_success", "upstream"),
    ("gatewayz.chat.routing", "open_response", "open_response"),
    ("gatewayz.chat.completions", "_answer", "answer"),
    ("gatewayz.chat.completions", "Call.settle", "settle"),
    ("gatewayz.billing.credits", "settle", "settle_sql"),
    ("gatewayz.ratelimit.limiter", "correct", "correct"),
    ("gatewayz.metrics", "record", "metrics"),
    ("starlette.responses", "Response.__call__", "send_json"),
    ("gatewayz.chat.relay", "Relay.__call__", "relay"),
]


def serve_instrumented(port: int, out: str, serve: str) -> int:
    """Run `gatewayz dev` (or, `serve` "function", uvicorn as functions/chat/run.sh runs it,
    in functions/chat) with every step of STEPS timed; on SIGUSR1 write the CPU µs per
    request of each (since the last SIGUSR1) to `out` as JSON."""
    import importlib
    import inspect
    from collections import Counter

    from gatewayz import logs

    spent: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    clock = time.thread_time_ns

    def timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):

            async def measure(coroutine: Any) -> Any:
                start = clock()
                try:
                    return await coroutine
                finally:
                    spent[label] += clock() - start
                    calls[label] += 1

            def timed_async(*args: Any, **kwargs: Any) -> Any:
                # Called at once, so wrong arguments raise here as they would unwrapped
                # (uvicorn tells an app from an app factory that way).
                return measure(fn(*args, **kwargs))

            return inspect.markcoroutinefunction(timed_async)

        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            start, wall = clock(), time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += clock() - start
                # A sync call blocks the event loop for its whole wall time.
                spent[f"wall:{label}"] += time.perf_counter_ns() - wall
                calls[label] += 1

        return timed_sync

    for module_name, attribute, label in STEPS:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, timed(getattr(owner, name), label))
    logger = logs.get_logger()
    logger.info = timed(logger.info, "log_info")  # type: ignore[method-assign]
    mark = [time.process_time_ns()]

    # What the server calls once a request: the local gateway, or the app as deployed.
    outer = "local" if serve == "dev" else "app"

    def dump(signum: int, frame: object) -> None:
        now = time.process_time_ns()
        requests = max(1, calls[outer])
        data = {label: spent[label] / requests / 1000 for label in spent}
        data |= {"process": (now - mark[0]) / requests / 1000, "requests": calls[outer]}
        data["outer"] = data.get(outer, 0.0)
        Path(out).write_text(json.dumps(data))
        spent.clear()
        calls.clear()
        mark[0] = now

    signal.signal(signal.SIGUSR1, dump)
    if serve == "dev":
        from gatewayz.dev import cli

        return cli.main(["dev", "--port", str(port)])
    import uvicorn.main

    sys.path.insert(0, "")  # as `python -m uvicorn` has it: app.py is in the working directory
    uvicorn.main.main([*run_sh_options(port), "app:app"])
    return 0


# What each line of the breakdown is: label, then the steps it adds and subtracts.
BREAKDOWN = [
    ("uvicorn: HTTP/1.1 parsing and writing (h11), asyncio", ["process"], ["outer"]),
    ("LocalGateway: route match, request context (API Gateway stand-in)", ["local"], ["app"]),
    ("FastAPI/Starlette: middleware stack, routing, exception handling",
     ["app"], ["complete", "send_json", "relay", "log_info"]),
    ("  of which the access log call (logger.info)", ["log_info"], []),
    ("chat.complete own code: policy, routing plan, budget",
     ["complete"], ["parse", "authenticate", "catalog", "admission", "upstream", "answer"]),
    ("request parsing (json + pydantic)", ["parse"], []),
    ("authenticate (cached key)", ["authenticate"], ["pepper"]),
    ("  key pepper (config.key_hash_secret; dev: from $GATEWAYZ_HOME)", ["pepper"], []),
    ("catalog.models (cached catalog, rebuilt per request)", ["catalog"], []),
    ("rate limit: EVALSHA sent, then read after the hold (admission.reserve less it)",
     ["admission"], ["reserve"]),
    ("credits.reserve: SQL call (psycopg)", ["reserve"], []),
    ("upstream call: httpx request, response, body read", ["upstream"], []),
    ("answer: usage, cost, JSONResponse", ["answer"], ["settle"]),
    ("settle: usage record and limiter correction", ["settle"], ["settle_sql", "metrics"]),
    ("credits.settle: SQL call (psycopg)", ["settle_sql"], []),
    ("  psycopg Connection.execute, all calls (in the two above)", ["db_execute"], []),
    ("metrics.record (EMF line)", ["metrics"], []),
    ("JSON response sent through the middleware", ["send_json"], []),
    ("SSE relay: events read, rewritten, sent; settle inside", ["relay"], []),
    ("(not CPU) event loop blocked waiting in sync Redis/SQL calls",
     ["wall:admission", "wall:settle_sql"], ["admission", "settle_sql"]),
]  # fmt: skip


def breakdown(args: argparse.Namespace, fixture: Fixture, upstream: int, metrics: str,
              tmp: Path, home: Path) -> dict[str, dict[str, float]]:  # fmt: skip
    """CPU µs per request of each step, for completions and for streams (1 client)."""
    out = tmp / f"breakdown-{metrics}.json"
    port = free_port()
    env = gateway_env(args, fixture, upstream, metrics, home)
    log = tmp / f"instrumented-{metrics}.log"
    instrumented = ["--instrumented-gateway", str(port), str(out), args.serve]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, __file__, *instrumented],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env | {"PORT": str(port)},
            cwd=ROOT / "functions" / "chat" if args.serve == "function" else ROOT,
        )
    wait_for_port(port, proc, log)
    print(f"[metrics={metrics}] instrumented gateway pid {proc.pid}", file=sys.stderr)
    result = {}
    pg = PgCounters(args.pg_server, fixture.url)
    try:
        gw = Connection(port, Adapter() if args.serve == "function" else None)
        for kind, stream in (("completion", False), ("stream", True)):
            raw = request_bytes(stream=stream, key=fixture.key)
            for _ in range(args.warmup):
                gw.request(raw)
            pg.vacuum()
            wait_quiet(args.quiet)
            _dump(proc, out)
            for _ in range(args.requests):
                gw.request(raw)
                # A stream is settled after its last byte: let that finish before the
                # next request, or the two would overlap and be counted twice.
                time.sleep(0.002)
            result[kind] = _dump(proc, out)
        gw.close()
    finally:
        pg.close()
        stop(proc)
    return result


def _dump(proc: subprocess.Popen[bytes], out: Path) -> dict[str, float]:
    out.unlink(missing_ok=True)
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not out.exists() or not out.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError("the instrumented gateway wrote no breakdown")
        time.sleep(0.02)
    time.sleep(0.05)
    return dict(json.loads(out.read_text()))


def report_breakdown(results: dict[str, dict[str, dict[str, float]]]) -> None:
    for metrics, kinds in results.items():
        print(f"\nGATEWAYZ_METRICS={metrics}: the gateway's CPU time per request, µs, 1 client "
              "(thread CPU clock around each step; instrumented run)\n")  # fmt: skip
        rows = []
        for label, plus, minus in BREAKDOWN:
            cells = []
            for data in kinds.values():
                value = sum(data.get(k, 0.0) for k in plus) - sum(data.get(k, 0.0) for k in minus)
                cells.append(f"{value:.0f}" if any(k in data for k in plus) else "-")
            rows.append([label, *cells])
        total = ["total (process CPU)", *(f"{d['process']:.0f}" for d in kinds.values())]
        table(["step", *kinds], [*rows[:-1], total, rows[-1]])


# --- the report -----------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> None:
    """A markdown table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        first = f" {cells[0]:<{widths[0]}} "
        rest = [f" {cell:>{width}} " for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "|" + "|".join([first, *rest]) + "|"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def report(results: list[Result], args: argparse.Namespace) -> list[str]:
    """Print every table; return the budgets missed."""
    missed: list[str] = []
    c = args.concurrency
    for res in results:
        print(f"\n{res.label}: latency in ms (added = gateway - direct, per "
              "percentile); the gateway process's CPU time per request in µs\n")  # fmt: skip
        rows = []
        for r in res.rows:
            cells = [pct(r.direct, 0.5), pct(r.direct, 0.99), pct(r.gateway, 0.5)]
            cells += [pct(r.gateway, 0.99), r.added(0.5), r.added(0.99)]
            rows.append(
                [f"{r.clients} client{'s' if r.clients > 1 else ''}, {r.what}"]
                + [f"{v * 1000:.2f}" for v in cells]
                + [f"{r.cpu_us:.0f}", f"{r.wait_us:.0f}"]
            )
        header = ["request", "direct p50", "p99", "gateway p50", "p99", "added p50", "p99"]
        table([*header, "gw CPU", "gw waiting for CPU"], rows)

        busy, streams = res.row(c, "completion"), res.row(c, "stream: first token")
        rps = len(busy.gateway) / (busy.gateway_s or 1)
        print(f"\nthroughput at {c} clients: completions {rps:.0f} req/s through the gateway "
              f"({len(busy.direct) / (busy.direct_s or 1):.0f} direct), streams "
              f"{len(streams.gateway) / (streams.gateway_s or 1):.0f} req/s "
              f"({len(streams.direct) / (streams.direct_s or 1):.0f} direct); gateway CPU "
              f"{busy.cpu_us:.0f} µs a completion = at most {1e6 / busy.cpu_us:.0f} req/s "
              "on a core of its own")  # fmt: skip
        print(f"{process_name(res)}: peak RSS {res.peak_mb:.1f} MB (VmHWM), {res.rss_mb:.1f} MB "
              f"at the end; {res.emf_lines} EMF metric lines written")  # fmt: skip
        if res.believed:
            print(f"the function believed the adapter's headers: {res.believed}")
        print(f"first requests of the fresh process: completion {res.first_ms[0]:.1f} ms, "
              f"stream first token {res.first_ms[1]:.1f} ms")  # fmt: skip

        print("\nround trips per request (DB: transactions of the bench database; Redis: "
              "commands the gateway's connections sent; 'executed' is INFO "
              "total_commands_processed, which counts the script's inner calls and other "
              "clients too; reserve and settle µs: the server's time inside one call of "
              "reserve_credits and settle_usage, from pg_stat_user_functions, its commit "
              "not counted)\n")  # fmt: skip
        rows = [
            [name, str(t.requests)]
            + [f"{v:.3f}" for v in (t.db, t.reserve, t.settle, t.lookup)]
            + [f"{t.other:.3f}", f"{t.reserve_us:.0f}", f"{t.settle_us:.0f}", f"{t.redis:.3f}"]
            + [
                f"{t.redis_executed:.2f}",
                " ".join(f"{k} x{v}" for k, v in t.redis_commands.items()),
            ]
            for name, t in res.trips.items()
        ]
        header = ["block", "n", "DB", "reserve", "settle", "key lookup", "other"]
        header += ["reserve µs", "settle µs", "Redis"]
        table([*header, "Redis executed", "gateway's commands"], rows)

        report_store_trips(res)
        one, ttft = res.row(1, "completion"), res.row(1, "stream: first token")
        # A cached key's reload every 5 s amortizes below 0.05. The catalog's reload every
        # 60 s runs on a worker thread of its own, in no request's time, but its two
        # transactions (its connection's start and its SELECT) land in whichever block is
        # running: 0.04 in a block of 50, 0.1 in one of 20 (the proxy's per-request count,
        # `report_store_trips`, leaves them out). The budgets are a chat request's; the
        # other kinds' round trips are reported.
        chat_trips = [t for name, t in res.trips.items() if name.split(",")[0] in CHAT_BLOCKS]
        db = max(round(t.db, 1) for t in chat_trips)
        checks = [
            ("added p50, completion, 1 client (ms)", one.added(0.5) * 1000, BUDGET_P50_MS),
            ("added p99, completion, 1 client (ms)", one.added(0.99) * 1000, BUDGET_P99_MS),
            ("added p50 time to first token (ms)", ttft.added(0.5) * 1000, BUDGET_TTFT_MS),
            ("gateway CPU a completion, 1 client (µs)", one.cpu_us, BUDGET_CPU_US),
            ("gateway CPU a stream, 1 client (µs)", ttft.cpu_us, BUDGET_STREAM_CPU_US),
            ("DB round trips a chat request", db, BUDGET_DB),
            ("Redis round trips a chat request", max(t.redis for t in chat_trips), BUDGET_REDIS),
            (f"completions/s at {c} clients (at least)", rps, BUDGET_RPS),
            (f"peak RSS (MB), {rss_scope(res)}", res.peak_mb, BUDGET_RSS_MB),
        ]
        for kind in args.kinds:
            if kind == "chat":
                continue
            row = res.row(1, kind)
            checks += [
                (f"added p50, {kind}, 1 client (ms)", row.added(0.5) * 1000, BUDGET_P50_MS),
                (f"added p99, {kind}, 1 client (ms)", row.added(0.99) * 1000, BUDGET_P99_MS),
                (f"gateway CPU a {kind} request, 1 client (µs)", row.cpu_us, BUDGET_CPU_US),
            ]
        if res.store_ms:  # the TTFT budget is set for a store RTT of 1 ms
            checks[2] = (f"added p50 time to first token, store RTT +{res.store_ms:g} ms (ms)",
                         ttft.added(0.5) * 1000, BUDGET_TTFT_STORE_MS)  # fmt: skip
        if "completion, warm auth" in res.store_trips:
            warm = res.store_trips["completion, warm auth"]
            # Round trips to two stores in flight at once cost one wait.
            before = warm[WAITS][0] if WAITS in warm else sum(b for b, _ in warm.values())
            checks.append(("store round trips before the upstream call, warm key", before,
                           BUDGET_TRIPS_BEFORE))  # fmt: skip
        print()
        for name, value, budget in checks:
            at_least = "at least" in name
            ok = value >= budget if at_least else value <= budget
            print(f"  {'ok  ' if ok else 'MISS'} {name}: {value:.2f} (budget {budget})")
            if not ok:
                missed.append(f"{res.label}: {name} {value:.2f} (budget {budget})")
    return missed


CHAT_BLOCKS = ("completion", "stream")  # the round-trip blocks of chat completions


def process_name(res: Result) -> str:
    if res.serve == "function":
        return "chat function process (uvicorn as run.sh starts it)"
    return "gateway process (gatewayz dev)"


def rss_scope(res: Result) -> str:
    """What the RSS reading holds: the budget is set for every function loaded (dev)."""
    return "chat function only" if res.serve == "function" else "all functions loaded"


def report_store_trips(res: Result) -> None:
    """The latency proxy's count: store round trips before and after the upstream call."""
    if not res.store_trips:
        return
    print(f"\nstore round trips per request as the latency proxy saw them (+{res.store_ms:g} ms "
          f"each; its delayed writes were {res.proxy_late_us:+.0f} µs off at p50), "
          f"before / after the upstream call; {TRIP_SAMPLES} requests a block, "
          "one at a time\n")  # fmt: skip
    stores = sorted({name for block in res.store_trips.values() for name in block})
    rows = []
    for block, counts in res.store_trips.items():
        cells = [counts.get(name, (0.0, 0.0)) for name in stores]
        rows.append([block, *(f"{b:.2f} / {a:.2f}" for b, a in cells)])
    table(["block", *stores], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=2000, help="per measured row")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="clients at once")
    parser.add_argument("--count", type=int, default=500, help="requests per round-trip block")
    parser.add_argument("--cold", type=int, default=500, help="requests with a never-used key")
    parser.add_argument("--metrics", default="off,on", help="GATEWAYZ_METRICS values to run")
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--quiet", type=float, default=60, help="seconds to wait for an idle machine per block"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run an instrumented gateway: its CPU time per request, step by step",
    )
    parser.add_argument(
        "--gateway-path",
        help="a directory put first on the gateway's PYTHONPATH (try e.g. httptools, uvloop)",
    )
    parser.add_argument(
        "--store-latency-ms",
        help="comma-separated round trip times (e.g. 0,1) that bench/latency_proxy.py adds to "
        "every PostgreSQL and Redis round trip of the gateway; one run each",
    )
    parser.add_argument(
        "--serve",
        choices=("function", "dev"),
        default="function",
        help="function: the chat function as deployed (uvicorn as run.sh starts it, "
        "AWS_LAMBDA_FUNCTION_NAME set, this client adding the Lambda Web Adapter's headers); "
        "dev: `gatewayz dev`, the local API Gateway stand-in in front of every function",
    )
    parser.add_argument(
        "--kinds",
        default="chat",
        help=f"comma-separated request kinds to measure ({', '.join(KINDS)}): chat has every "
        "row; each other kind one row at 1 client",
    )
    parser.add_argument("--instrumented-gateway", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instrumented_gateway:
        port, out, serve = args.instrumented_gateway
        return serve_instrumented(int(port), out, serve)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := set(args.kinds) - set(KINDS):
        parser.error(f"unknown --kinds {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")

    tmp = Path(tempfile.mkdtemp(prefix="gatewayz-bench-"))
    home = tmp / "home"
    from gatewayz.config import Settings

    for name in Settings.model_fields:
        os.environ.pop(name.upper(), None)
    os.environ["GATEWAYZ_HOME"] = str(home)  # the pepper the gateway will find there
    fixture = create_database(args.pg_server, 2 * args.cold + TRIP_SAMPLES)
    upstream, upstream_port = start_upstream(tmp)
    results = []
    breakdowns = {}
    try:
        latencies = args.store_latency_ms.split(",") if args.store_latency_ms else [None]
        for metrics in args.metrics.split(","):
            for ms in latencies:
                store_ms = None if ms is None else float(ms)
                results.append(
                    run_config(args, fixture, upstream_port, metrics, tmp, home, store_ms)
                )
            if args.breakdown:
                breakdowns[metrics] = breakdown(args, fixture, upstream_port, metrics, tmp, home)
    finally:
        stop(upstream)
        drop_database(args.pg_server, fixture.url)
        shutil.rmtree(tmp, ignore_errors=True)
    versions = _versions(args)
    print(f"nproc {os.cpu_count()}, python {sys.version.split()[0]}, {versions}; "
          f"{args.requests} requests per row after {args.warmup} warm-up, "
          f"{args.cold} for the cold-auth row; --serve {args.serve}")  # fmt: skip
    if args.gateway_path:
        print(f"gateway PYTHONPATH starts with {args.gateway_path}")
    missed = report(results, args)
    report_breakdown(breakdowns)
    if missed:
        print("\nmissed budgets:\n  " + "\n  ".join(missed))
    return 1 if missed else 0


def _versions(args: argparse.Namespace) -> str:
    import psycopg
    import redis

    with psycopg.connect(args.pg_server) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    client = redis.Redis.from_url(args.redis_url)
    version = client.info("server")["redis_version"]
    client.close()
    return f"PostgreSQL {row[0] if row else '?'}, Redis {version}"


if __name__ == "__main__":
    sys.exit(main())
