"""Request bodies as strict JSON (docs/api.md, errors): anything else is a 400, never a 500.

Python's `json` accepts more than JSON: `NaN` and `Infinity` (and `1e400`, which it reads
as infinity), surrogates encoded as UTF-8 bytes, and `\\ud800` escapes that decode to a
lone surrogate (a string no UTF-8 encoder can write, so it would blow up the first time
the gateway measures or forwards it). All are refused here, as is nesting too deep for
the parser.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from gatewayz import errors

# A `\u` escape of a surrogate half. Pairs are fine (the parser joins them into one
# character); only when one appears is the parsed body searched for a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(raw: bytes) -> Any:
    """The body parsed as JSON.

    Raises:
        InvalidJSON: not JSON (including NaN/Infinity, bytes that are not UTF-8, nesting
            too deep to parse).
        InvalidRequest: a string holds a lone surrogate (`param` names where).
    """
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        value = _decoder().decode(raw.decode())
    except RecursionError:
        raise errors.InvalidJSON("Request body is nested too deeply.") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise errors.InvalidJSON(f"Request body is not valid JSON: {exc}.") from None
    if _SURROGATE_ESCAPE.search(raw):
        where = lone_surrogate(value)
        if where is not None:
            raise errors.InvalidRequest(
                "Strings must be valid Unicode: this one holds an unpaired surrogate "
                "(a \\ud800-\\udfff escape without its other half).",
                param=where or None,
            )
    return value


@functools.cache
def _decoder() -> json.JSONDecoder:
    """Made once: `json.loads` with hooks builds a decoder (and its scanner) per call."""
    return json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def lone_surrogate(value: Any) -> str | None:
    """The path of the first string (or key) holding a lone surrogate, like
    `messages[0].content`; "" for the body itself; None when there is none."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if _SURROGATE.search(key):
                    return path
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None
