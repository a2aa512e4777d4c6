"""The chat path's JSON: orjson's speed, the standard library's tolerance."""

from __future__ import annotations

import json
import math

import pytest

from gatewayz import fastjson


def test_a_round_trip_is_compact_utf8() -> None:
    value = {"content": "héllo 👋", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    written = fastjson.dumps(value)
    assert written == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert fastjson.loads(written) == value


def test_a_lone_surrogate_a_provider_sent_passes_through_as_its_escape() -> None:
    # A token boundary inside an emoji: the first half of its UTF-16 pair alone.
    chunk = b'{"delta":{"content":"\\ud83d"}}'
    value = fastjson.loads(chunk)
    assert value == {"delta": {"content": "\ud83d"}}
    written = fastjson.dumps(value)
    assert written == b'{"delta":{"content":"\\ud83d"}}'
    assert json.loads(written) == value


def test_an_integer_beyond_64_bits_is_kept() -> None:
    big = 2**70
    assert fastjson.loads(str(big).encode()) == big
    assert fastjson.dumps({"n": big}) == f'{{"n":{big}}}'.encode()


def test_a_providers_nan_is_written_as_null() -> None:
    value = fastjson.loads(b'{"logprob": NaN}')
    assert math.isnan(value["logprob"])
    assert fastjson.dumps(value) == b'{"logprob":null}'


@pytest.mark.parametrize("data", [b"", b"{", b"nope", b'{"a":1,}'])
def test_what_is_not_json_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        fastjson.loads(data)
