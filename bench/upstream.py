"""A minimal, fast OpenAI-compatible upstream for `bench/overhead.py`.

A raw asyncio HTTP/1.1 server (keep-alive, `Content-Length` request bodies) that answers
`POST /v1/chat/completions` at once: a `chat.completion` with usage, or, for
`"stream": true`, the whole SSE stream (a role chunk, content chunks, a finish chunk, a
usage chunk, `data: [DONE]`) in one chunked-encoded write; and `POST /v1/embeddings`: an
OpenAI embeddings list, one `--dimensions` vector per input, with usage (about four bytes
of input a token). It parses only what it must,
so that the upstream's own cost stays a small, known part of what the bench measures.
Run in a process of its own: `python bench/upstream.py [--port N] [--dimensions D]` prints
`port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from functools import lru_cache

WORDS = ["Hello", " from", " the", " bench", " upstream", ",", " at", " once", "."]
USAGE = {"prompt_tokens": 12, "completion_tokens": len(WORDS), "total_tokens": 12 + len(WORDS)}
DIMENSIONS = [1536]  # floats per embedding vector (text-embedding-3-small's), `--dimensions`
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)


def completion(model: str) -> bytes:
    """A non-streamed chat.completion, whole response (headers and body)."""
    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(WORDS)},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    ).encode()
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def stream(model: str) -> bytes:
    """A whole SSE stream, one HTTP chunk per event, as OpenAI sends it."""
    head = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice], "usage": None}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": word}) for word in WORDS]
    events += [chunk({}, "stop"), {**head, "choices": [], "usage": USAGE}]
    out = [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    ]
    for data in [*(f"data: {json.dumps(e)}\n\n".encode() for e in events), b"data: [DONE]\n\n"]:
        out.append(b"%x\r\n%s\r\n" % (len(data), data))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


@lru_cache(maxsize=8)
def vector(dimensions: int) -> str:
    """One embedding vector as JSON: `dimensions` floats, as OpenAI prints them (made once:
    every answer carries the same vector, so the upstream's cost stays small)."""
    rng = random.Random(dimensions)
    return json.dumps([round(rng.uniform(-0.1, 0.1), 9) for _ in range(dimensions)])


def embeddings(request: dict[str, object]) -> bytes:
    """An OpenAI embeddings list: one vector per input (a string or a list of them), and
    usage counting about four bytes of input a token."""
    raw = request.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    tokens = sum(max(1, len(str(text).encode()) // 4) for text in inputs)
    data = ",".join(
        f'{{"object":"embedding","index":{i},"embedding":{vector(DIMENSIONS[0])}}}'
        for i in range(len(inputs))
    )
    usage = json.dumps({"prompt_tokens": tokens, "total_tokens": tokens})
    model = json.dumps(str(request.get("model")))
    body = f'{{"object":"list","data":[{data}],"model":{model},"usage":{usage}}}'.encode()
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Upstream(asyncio.Protocol):
    """One client connection: requests are answered in order as they complete."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(answer(head.split(" ", 2), body))


def answer(request_line: list[str], body: bytes) -> bytes:
    if request_line[:2] == ["POST", "/v1/embeddings"]:
        return embeddings(json.loads(body))
    if request_line[:2] != ["POST", "/v1/chat/completions"]:
        return NOT_FOUND
    request = json.loads(body)
    model = str(request.get("model"))
    return stream(model) if request.get("stream") is True else completion(model)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dimensions", type=int, default=DIMENSIONS[0], help="embedding size")
    args = parser.parse_args()
    DIMENSIONS[0] = args.dimensions
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
