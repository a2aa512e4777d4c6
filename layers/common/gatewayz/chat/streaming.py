"""Server-sent events (docs/api.md, streaming).

`SSEDecoder` splits an upstream byte stream into events, however the bytes are cut
(mid-line, mid-character). The relay (relay.py) rewrites each JSON chunk into OpenAI's
shape (answer_shape.py), adds `usage.cost` to the usage chunk, and turns a late error
into one `data: {"error": ...}` chunk, then `data: [DONE]`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gatewayz import fastjson

if TYPE_CHECKING:
    from gatewayz.errors import GatewayError

DONE = b"data: [DONE]\n\n"


_UNPARSED: Any = object()


@dataclass(slots=True)
class Event:
    """One SSE event: its raw bytes (without the blank line) and its `data` payload."""

    raw: bytes
    data: bytes | None  # None for comments and events without data
    _parsed: Any = field(default=_UNPARSED, compare=False, repr=False)

    @property
    def is_done(self) -> bool:
        return self.data == b"[DONE]"

    def json(self) -> dict[str, Any] | None:
        """The data as a JSON object, or None if it is not one. Parsed once: every caller
        gets the same dict, so one that changes it must be the last to read it (the relay
        rewrites a chunk only after the checks before the first byte have read it)."""
        if self._parsed is _UNPARSED:
            self._parsed = self._parse_json()
        parsed: dict[str, Any] | None = self._parsed
        return parsed

    def _parse_json(self) -> dict[str, Any] | None:
        if self.data is None or self.is_done:
            return None
        try:
            value = fastjson.loads(self.data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class SSEDecoder:
    """Incremental SSE parsing (the WHATWG event-stream format, as OpenAI sends it)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        """Events completed by `chunk`; a partial event waits for the next one."""
        buffer = self._buffer + chunk
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # half of a CRLF whose LF may come with the next read
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *blocks, rest = buffer.split(b"\n\n")
        self._buffer = rest + held
        return [_parse(block) for block in blocks if block]

    def flush(self) -> list[Event]:
        """What is left when the stream ends (an event without its closing blank line)."""
        block, self._buffer = self._buffer.replace(b"\r", b"\n").strip(b"\n"), b""
        return [_parse(block)] if block else []


def _parse(block: bytes) -> Event:
    if b"\n" not in block and block.startswith(b"data:"):  # nearly every event: one line
        return Event(raw=block, data=_value(block))
    data = [_value(line) for line in block.split(b"\n") if line.startswith(b"data:")]
    return Event(raw=block, data=b"\n".join(data) if data else None)


def _value(line: bytes) -> bytes:
    """A `data:` line's value, without the one space that may follow the colon."""
    value = line[5:]
    return value[1:] if value.startswith(b" ") else value


def encode(payload: dict[str, Any]) -> bytes:
    """One `data:` event."""
    return b"data: " + fastjson.dumps(payload) + b"\n\n"


def error_chunk(err: GatewayError, *, chunk_id: str, model: str, chat: bool = True) -> bytes:
    """The in-band error after streaming began: a chunk the OpenAI SDKs raise on, with
    `finish_reason: "error"` so a reader that ignores `error` still sees the end."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": "error"}
    if chat:
        choice["delta"] = {}
    else:
        choice["text"] = ""
    return encode(
        {
            "id": chunk_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "error": err.body()["error"],
        }
    )
