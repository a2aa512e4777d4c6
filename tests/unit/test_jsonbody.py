"""Request bodies as strict JSON (gatewayz/jsonbody.py): what Python's parser accepts
beyond JSON is a 400 naming where, never a 500."""

from __future__ import annotations

import pytest

from gatewayz import errors, jsonbody


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(constant: bytes) -> None:
    with pytest.raises(errors.InvalidJSON, match="not a JSON value"):
        jsonbody.loads(b'{"temperature": ' + constant + b"}")


def test_a_number_too_large_to_be_finite_is_refused() -> None:
    # Python reads 1e400 as infinity, which no JSON encoder may write back.
    with pytest.raises(errors.InvalidJSON, match="too large"):
        jsonbody.loads(b'{"temperature": 1e400}')
    assert jsonbody.loads(b'{"temperature": 1e300}') == {"temperature": 1e300}


def test_a_surrogate_encoded_as_utf8_bytes_is_refused() -> None:
    # ED A0 80 is U+D800 written as UTF-8: not valid UTF-8 at all.
    with pytest.raises(errors.InvalidJSON):
        jsonbody.loads(b'{"content": "' + bytes([0xED, 0xA0, 0x80]) + b'"}')


def test_a_body_nested_ten_thousand_deep_is_refused() -> None:
    with pytest.raises(errors.InvalidJSON, match="nested too deeply"):
        jsonbody.loads(b"[" * 10_000 + b"]" * 10_000)


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(errors.InvalidJSON):
        jsonbody.loads(b'{"model": "\xff\xfe"}')


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (rb'{"messages": [{"role": "user", "content": "a\ud800b"}]}', "messages[0].content"),
        (rb'{"messages": [{"role": "user", "name": "\udfff"}]}', "messages[0].name"),
        (
            rb'{"tools": [{"function": {"description": "x\uDBFF"}}]}',
            "tools[0].function.description",
        ),
        (rb'{"prompt": ["fine", "\ud83d"]}', "prompt[1]"),
        (rb'{"metadata": {"\ud800": "key"}}', "metadata"),
        (rb'"\ud800"', None),
    ],
)
def test_a_lone_surrogate_anywhere_is_refused_naming_where(raw: bytes, param: str | None) -> None:
    with pytest.raises(errors.InvalidRequest, match="unpaired surrogate") as caught:
        jsonbody.loads(raw)
    assert caught.value.param == param
    assert not isinstance(caught.value, errors.InvalidJSON)


def test_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    # An emoji written as a pair of escapes, as some JSON encoders write it.
    assert jsonbody.loads(rb'{"content": "\ud83d\ude00"}') == {"content": "\U0001f600"}
    # A backslash followed by the letters "ud800" is text, not an escape.
    assert jsonbody.loads(rb'{"content": "\\ud800"}') == {"content": "\\ud800"}


def test_ordinary_json_parses() -> None:
    assert jsonbody.loads(b'{"n": 1, "t": 0.5, "ok": true, "x": null}') == {
        "n": 1,
        "t": 0.5,
        "ok": True,
        "x": None,
    }
