"""A TCP proxy that puts a network between the gateway and its stores (bench/README.md).

`bench/overhead.py --store-latency-ms 1` starts it in a process of its own, in front of
PostgreSQL and Redis, standing in for Lambda -> Supabase/Upstash in one region; the
gateway's DATABASE_URL and REDIS_URL point at it. It also counts round trips, so it is an
instrument as much as a delay.

How the delay models a network round trip time (RTT) of `d`:

- The answers' direction is a *delay line*: every chunk read from the server is stamped
  on arrival and written to the client at arrival + d, in order. A request and its
  answer thus cost d, whatever their size, exactly as on a wire.
- Not "sleep d, then forward": with pipelining (psycopg's pipeline mode, several Redis
  commands in one write, a response that arrives in several reads) a proxy that sleeps
  per read serializes the delays, so a burst of n reads costs n x d. A delay line lets
  chunks overlap in flight, as packets do, so n pipelined commands cost one d.
- The whole d on the answer, none on the request: for a request/response protocol the
  client sees the same latency as with d/2 each way, and one timer per round trip
  instead of two halves the proxy's own timing error. (Server-initiated data, which the
  chat path never waits for, gets d instead of d/2.)
- A new connection costs one RTT before its first byte can arrive (the TCP handshake):
  the client's first chunk is written no sooner than d after it connected. TLS
  would cost one or two RTTs more; the stores here speak plain TCP, so it is left out.
- asyncio's default selector (epoll) rounds every timeout *up* to a whole millisecond, so
  a 0.3 ms wait would become 1 ms. The proxy runs its loop on `select()`, whose timeout
  has microsecond resolution (a handful of sockets: its cost is nothing here). A timer
  still fires some 50-100 us late (the wake-up, the loop's own work), so each is set
  early by the average lateness seen so far; the stats report how late each write
  actually was (`late_us_*`), so a run shows the delay it got.

Round trips: per connection, a burst of client->server data followed by server->client
data is one round trip (however many reads either side took). Each is logged with the
monotonic time its request began (CLOCK_MONOTONIC: comparable with `time.monotonic_ns()`
in other processes on this host). A route with `--watch` is counted but not delayed:
`bench/overhead.py` watches the fake upstream that way, to tell the store round trips
before the upstream call from those after it.

Run: `python bench/latency_proxy.py --delay-ms 1 --forward postgres=127.0.0.1:5432
--forward redis=127.0.0.1:6379 [--watch upstream=127.0.0.1:PORT]`. It prints one JSON
line, {"ports": {name: listening port}, "control": port}; the control port answers a line
`stats` with the JSON of what it counted (and `reset` clears it). Stdlib only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import selectors
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stats:
    """What the proxy saw since the last reset."""

    # (route, conn, start ns, end ns: when its answer reaches the client, the delay included)
    trips: list[tuple[str, int, int, int]] = field(default_factory=list)
    connections: dict[str, int] = field(default_factory=dict)
    late_us: list[float] = field(default_factory=list)  # how late each delayed write was

    def as_json(self) -> dict[str, object]:
        late = sorted(self.late_us)
        return {
            "trips": self.trips,
            "connections": self.connections,
            "writes": len(late),
            "late_us_p50": late[len(late) // 2] if late else 0.0,
            "late_us_max": late[-1] if late else 0.0,
        }


class DelayLine:
    """Writes each chunk to `transport` `delay` seconds after it arrived, in order."""

    # The timer is set this much early, learnt as it runs (a moving average of lateness).
    early = 0.0

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, stats: Stats) -> None:
        self.loop, self.delay, self.stats = loop, delay, stats
        self.queue: deque[tuple[float, bytes]] = deque()
        self.transport: asyncio.Transport | None = None
        self.not_before = 0.0  # a new connection's handshake
        self.timer: asyncio.TimerHandle | None = None

    def push(self, data: bytes) -> None:
        due = max(self.loop.time() + self.delay, self.not_before)
        self.queue.append((due, data))
        self._schedule()

    def attach(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._schedule()

    def _schedule(self) -> None:
        if self.timer is None and self.queue and self.transport is not None:
            due = self.queue[0][0]
            if due - DelayLine.early <= self.loop.time():
                self._flush()
            else:
                self.timer = self.loop.call_at(due - DelayLine.early, self._flush, due)

    def _flush(self, aimed: float | None = None) -> None:
        self.timer = None
        now = self.loop.time()
        if aimed is not None:
            late = now - (aimed - DelayLine.early)  # how late this timer fired
            DelayLine.early += (min(late, 0.5e-3) - DelayLine.early) / 16
        assert self.transport is not None
        while self.queue and self.queue[0][0] - DelayLine.early <= now:
            due, data = self.queue.popleft()
            if self.delay:
                self.stats.late_us.append((now - due) * 1e6)
            self.transport.write(data)
        self._schedule()

    def close_after(self) -> None:
        """Close the transport once what is in flight was written."""
        if self.transport is None:
            return
        if self.queue:
            self.loop.call_at(self.queue[-1][0] + 1e-4, self.close_after)
        else:
            self.transport.close()


class Route:
    """One listening port forwarding to one server, delayed by `delay` seconds a round trip."""

    def __init__(self, name: str, host: str, port: int, delay: float, stats: Stats) -> None:
        self.name, self.host, self.port, self.delay, self.stats = name, host, port, delay, stats
        self.count = 0

    def protocol(self) -> ClientSide:
        self.count += 1
        self.stats.connections[self.name] = self.stats.connections.get(self.name, 0) + 1
        return ClientSide(self, self.count)


class ClientSide(asyncio.Protocol):
    """The client's connection to the proxy, and the proxy's to the server behind it."""

    def __init__(self, route: Route, number: int) -> None:
        self.route, self.number = route, number
        loop = asyncio.get_running_loop()
        self.to_server = DelayLine(loop, 0.0, route.stats)
        self.to_client = DelayLine(loop, route.delay, route.stats)
        self.request_start: int | None = None  # a request is out, its answer not yet in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.set_write_buffer_limits(high=1 << 24)
        self.to_client.attach(transport)
        loop = asyncio.get_running_loop()
        # The handshake: the first byte reaches the server no sooner than one RTT from now
        # (its answer then takes another).
        self.to_server.not_before = loop.time() + self.route.delay
        self.connecting = loop.create_task(self._connect(transport))

    async def _connect(self, client: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            server, _ = await loop.create_connection(
                lambda: ServerSide(self), self.route.host, self.route.port
            )
        except OSError:
            client.close()
            return
        self.to_server.attach(server)

    def data_received(self, data: bytes) -> None:
        if self.request_start is None:
            self.request_start = time.monotonic_ns()
        self.to_server.push(data)

    def answer_received(self, data: bytes) -> None:
        if self.request_start is not None:
            end = time.monotonic_ns() + round(self.route.delay * 1e9)
            self.route.stats.trips.append((self.route.name, self.number, self.request_start, end))
            self.request_start = None
        self.to_client.push(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.to_server.close_after()

    def server_lost(self) -> None:
        self.to_client.close_after()


class ServerSide(asyncio.Protocol):
    """The proxy's connection to the server: hands what it reads to its client side."""

    def __init__(self, client: ClientSide) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client.answer_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.server_lost()


async def control(stats: Stats, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """`stats` -> one JSON line of what was counted; `reset` -> clears it."""
    while line := (await reader.readline()).strip():
        if line == b"reset":
            stats.trips.clear()
            stats.connections.clear()
            stats.late_us.clear()
            writer.write(b"{}\n")
        else:
            writer.write(json.dumps(stats.as_json()).encode() + b"\n")
        await writer.drain()
    writer.close()


async def serve(routes: list[Route], stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    ports = {}
    for route in routes:
        server = await loop.create_server(route.protocol, "127.0.0.1", 0, backlog=1024)
        ports[route.name] = server.sockets[0].getsockname()[1]
    ctl = await asyncio.start_server(lambda r, w: control(stats, r, w), "127.0.0.1", 0)
    print(json.dumps({"ports": ports, "control": ctl.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Event().wait()


def parse_target(text: str) -> tuple[str, str, int]:
    name, _, address = text.partition("=")
    host, _, port = address.rpartition(":")
    return name, host or "127.0.0.1", int(port)


# --- the remote control, for bench/overhead.py -----------------------------------------


class Proxy:
    """A proxy process: started with its routes, asked for its counts, stopped."""

    def __init__(self, delay_ms: float, forward: dict[str, int], watch: dict[str, int]) -> None:
        command = [sys.executable, str(Path(__file__)), "--delay-ms", str(delay_ms)]
        command += [f"--forward={name}=127.0.0.1:{port}" for name, port in forward.items()]
        command += [f"--watch={name}=127.0.0.1:{port}" for name, port in watch.items()]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        started = json.loads(self.process.stdout.readline() or b"{}")
        if "ports" not in started:
            self.stop()
            raise RuntimeError("the latency proxy did not start")
        self.ports: dict[str, int] = started["ports"]
        self.control = socket.create_connection(("127.0.0.1", started["control"]))
        self.buffer = b""

    def _ask(self, line: bytes) -> dict[str, object]:
        self.control.sendall(line + b"\n")
        while b"\n" not in self.buffer:
            self.buffer += self.control.recv(1 << 20)
        answer, _, self.buffer = self.buffer.partition(b"\n")
        return dict(json.loads(answer))

    def stats(self) -> dict[str, object]:
        return self._ask(b"stats")

    def reset(self) -> None:
        self._ask(b"reset")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def split_trips(
    trips: list[list[object]], marks: list[int], upstream: str = "upstream"
) -> dict[str, tuple[float, float]]:
    """Round trips per request to each store, (before, after) the request's upstream call;
    under `WAITS`, the waits they cost: round trips in flight at the same time (to
    two stores, overlapped) are one wait; under `WAITED_MS`, the median request's time
    with a store round trip in flight (overlapped ones counted once): at +0 ms, what the
    stores' own work and one loopback hop cost the request's latency.

    `marks` are the monotonic times each request was sent, one at a time, with a pause
    after each, so a request's round trips fall between its mark and the next one. A
    request without an upstream call counts all its round trips as before it.
    """
    bounds = [*marks, 2**63]
    stamped = sorted(
        (int(str(t[2])), str(t[0]), int(str(t[3])) if len(t) > 3 else int(str(t[2]))) for t in trips
    )
    counts: dict[str, list[int]] = {}
    waits = [0, 0]
    waited: tuple[list[int], list[int]] = ([], [])  # ns a request waited, before / after
    for start, end in itertools.pairwise(bounds):
        mine = [trip for trip in stamped if start <= trip[0] < end]
        first_call = min((at for at, name, _ in mine if name == upstream), default=2**63)
        busy_until = [-1, -1]  # the end of the latest wait, before / after the call
        spent = [0, 0]
        for at, name, done in mine:
            if name == upstream:
                continue
            side = 0 if at < first_call else 1
            pair = counts.setdefault(name, [0, 0])
            pair[side] += 1
            if at >= busy_until[side]:  # nothing still in flight: a new wait
                waits[side] += 1
            # The part of this trip no earlier trip of the request already covered.
            spent[side] += max(0, done - max(at, busy_until[side]))
            busy_until[side] = max(busy_until[side], done)
        for side in (0, 1):
            waited[side].append(spent[side])
    n = max(1, len(marks))
    split = {name: (pair[0] / n, pair[1] / n) for name, pair in sorted(counts.items())}
    if counts:
        split[WAITS] = (waits[0] / n, waits[1] / n)
        split[WAITED_MS] = (_median(waited[0]) / 1e6, _median(waited[1]) / 1e6)
    return split


def _median(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[len(ordered) // 2]) if ordered else 0.0


WAITS = "waits (overlapped = 1)"
WAITED_MS = "waited, ms (median)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, default=1.0, help="round trip time added")
    parser.add_argument("--forward", action="append", default=[], help="NAME=HOST:PORT, delayed")
    parser.add_argument("--watch", action="append", default=[], help="NAME=HOST:PORT, counted only")
    args = parser.parse_args()
    stats = Stats()
    routes = [Route(*parse_target(t), args.delay_ms / 1000, stats) for t in args.forward]
    routes += [Route(*parse_target(t), 0.0, stats) for t in args.watch]
    # select(): microsecond timeouts (epoll's are whole milliseconds, rounded up).
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    with contextlib.suppress(KeyboardInterrupt):
        loop.run_until_complete(serve(routes, stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
