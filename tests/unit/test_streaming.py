"""SSE decoding however the bytes are cut, and the in-band error chunk."""

from __future__ import annotations

import json

import pytest

from gatewayz import errors
from gatewayz.chat.streaming import DONE, SSEDecoder, encode, error_chunk

STREAM = (
    ": OPENROUTER PROCESSING\n\n"
    'data: {"id":"c1","choices":[{"delta":{"content":"héllo wörld ✓"}}]}\n\n'
    'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    "data: [DONE]\n\n"
).encode()


def decode(pieces: list[bytes]) -> list[tuple[bytes, bytes | None]]:
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)] + decoder.flush()
    return [(e.raw, e.data) for e in events]


# Each event as (its raw bytes without the blank line, its data), written out by hand.
EVENTS = [
    (b": OPENROUTER PROCESSING", None),
    (
        'data: {"id":"c1","choices":[{"delta":{"content":"héllo wörld ✓"}}]}'.encode(),
        '{"id":"c1","choices":[{"delta":{"content":"héllo wörld ✓"}}]}'.encode(),
    ),
    (
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}',
        b'{"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}',
    ),
    (b"data: [DONE]", b"[DONE]"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_any_split_decodes_to_the_same_events_even_mid_character(size: int) -> None:
    assert decode([STREAM[i : i + size] for i in range(0, len(STREAM), size)]) == EVENTS


def test_crlf_and_multiline_data_and_a_missing_last_blank_line() -> None:
    events = decode([b'data: {"a":\r\ndata: 1}\r\n\r\ndata: [DONE]'])
    assert events[0][1] == b'{"a":\n1}'
    assert events[1][1] == b"[DONE]"


def test_a_crlf_split_between_two_reads_is_one_line_ending() -> None:
    events = decode([b"data: 1\r", b"\nid: 7\r", b"\n\r", b"\ndata: [DONE]\r\n\r\n"])
    assert events == [(b"data: 1\nid: 7", b"1"), (b"data: [DONE]", b"[DONE]")]


@pytest.mark.parametrize("size", [1, 2, 5, 64])
def test_crlf_streams_decode_alike_however_they_are_cut(size: int) -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    pieces = [crlf[i : i + size] for i in range(0, len(crlf), size)]
    assert decode(pieces) == EVENTS


def test_events_pass_through_as_the_bytes_they_came_as() -> None:
    raw = b'data: {"x":  1}'
    (event,) = SSEDecoder().feed(raw + b"\n\n")
    assert event.raw == raw
    assert event.json() == {"x": 1}
    assert not event.is_done


def test_the_error_chunk_is_what_the_openai_sdk_raises_on() -> None:
    chunk = error_chunk(errors.UpstreamError("broke"), chunk_id="c9", model="m/x")
    assert chunk.startswith(b"data: ")
    assert chunk.endswith(b"\n\n")
    payload = json.loads(chunk[6:])
    assert payload["error"] == {
        "message": "broke",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_error",
    }
    assert payload["choices"][0]["finish_reason"] == "error"
    assert payload["id"] == "c9"
    assert encode({"a": 1}) == b'data: {"a":1}\n\n'
    assert DONE == b"data: [DONE]\n\n"
