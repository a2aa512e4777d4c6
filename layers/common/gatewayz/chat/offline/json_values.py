"""A JSON value that a JSON schema accepts, made deterministically: the offline model's tool
arguments and structured output (docs/api.md, "The offline mock").

`const`, else the first `enum` value; objects with every property (past `MAX_DEPTH`, only
the required ones), arrays with `minItems` items (at least one, until `MAX_DEPTH`),
strings named after their property (or a sample of their `format`), numbers within their
bounds, `true`. `$ref` to the schema's own definitions, `anyOf`/`oneOf` (the first
branch that is not null) and `allOf` (merged) are followed: what the OpenAI SDK sends for
a pydantic model. `pattern` is not honoured.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 6  # deeper, optional parts are left out: a recursive schema stays finite
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def sample(schema: object) -> Any:
    """A value `schema` accepts (a JSON schema as a dict; anything else accepts anything)."""
    return _Sampler(schema).value(schema, "value", 0)


class _Sampler:
    def __init__(self, root: object) -> None:
        self.root = root

    def value(self, schema: object, name: str, depth: int) -> Any:
        if not isinstance(schema, dict):
            return None  # `true` or a non-schema: null is as good as anything
        if depth > 4 * MAX_DEPTH:
            return None  # a $ref loop with nothing optional to leave out
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.value(self._resolve(ref), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(self._branch(branches, depth), name, depth + 1)
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            return self.value(self._merge(schema, parts), name, depth + 1)
        kind = _type(schema, deep=depth >= MAX_DEPTH)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "string":
            return _string(schema, name)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        return None

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        required = schema.get("required")
        wanted = set(required) if isinstance(required, list) else set()
        return {
            str(key): self.value(sub, str(key), depth + 1)
            for key, sub in properties.items()
            if depth < MAX_DEPTH or key in wanted
        }

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        least = _count(schema.get("minItems")) or 0
        most = _count(schema.get("maxItems"))
        count = least if depth >= MAX_DEPTH else max(least, 1)
        if most is not None:
            count = min(count, most)
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = [self.value(sub, name, depth + 1) for sub in prefix[:count]]
        rest = schema.get("items", {})
        items += [self.value(rest, name, depth + 1) for _ in range(count - len(items))]
        return items

    def _branch(self, branches: list[Any], depth: int) -> object:
        nulls = [b for b in branches if isinstance(b, dict) and b.get("type") == "null"]
        others = [b for b in branches if b not in nulls]
        if depth >= MAX_DEPTH and nulls:
            return nulls[0]
        return (others or branches)[0]

    def _merge(self, schema: dict[str, Any], parts: list[Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            part = self._resolve(part["$ref"]) if _is_ref(part) else part
            if not isinstance(part, dict):
                continue
            properties = {**merged.get("properties", {}), **part.get("properties", {})}
            required = [*merged.get("required", []), *part.get("required", [])]
            merged = {**part, **merged, "properties": properties, "required": required}
        return merged

    def _resolve(self, ref: str) -> object:
        """A local reference (`#/$defs/Name`); anything else accepts anything."""
        if not ref.startswith("#"):
            return {}
        node: object = self.root
        for token in filter(None, ref[1:].split("/")):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                return {}
            node = node[token]
        return node


def _is_ref(part: object) -> bool:
    return isinstance(part, dict) and isinstance(part.get("$ref"), str)


def _type(schema: dict[str, Any], *, deep: bool) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        if deep and "null" in kind:
            return "null"
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _string(schema: dict[str, Any], name: str) -> str:
    text = _FORMATS.get(str(schema.get("format")), name or "text")
    least = _count(schema.get("minLength")) or 0
    most = _count(schema.get("maxLength"))
    if len(text) < least:
        text += "x" * (least - len(text))
    return text[:most] if most is not None else text


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    """1 (1.5 for a number) moved within the bounds, on a `multipleOf` when there is one."""
    low, high = _bound(schema, "minimum"), _bound(schema, "maximum")
    low_open, high_open = _bound(schema, "exclusiveMinimum"), _bound(schema, "exclusiveMaximum")
    step = _bound(schema, "multipleOf")
    value: float = 1 if integer else 1.5
    if low_open is not None and value <= low_open:
        value = math.floor(low_open) + 1 if integer else low_open + 0.5
    if low is not None and value < low:
        value = math.ceil(low) if integer else low
    if step and step > 0:
        value = math.ceil(value / step) * step
    if high_open is not None and value >= high_open:
        value = math.ceil(high_open) - 1 if integer else high_open - 0.5
    if high is not None and value > high:
        value = math.floor(high) if integer else high
    return int(value) if integer else value


def _bound(schema: dict[str, Any], key: str) -> float | None:
    value = schema.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return min(value, 64)  # a sample, not a load test
