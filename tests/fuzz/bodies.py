"""What the fuzz sends: request bodies as raw bytes.

- `valid(endpoint)`: bodies generated from OpenAI's published request schema
  (`openai_request_schemas.json`), addressed to `test/echo`.
- `wrong_type(endpoint)`: a small valid body with one field the gateway reads given a
  value of the wrong JSON type; `missing_required(endpoint)`.

The hostile bodies no schema generator writes are in `hostile.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

MODEL = "test/echo"
PATHS = {"chat": "/chat/completions", "completions": "/completions"}
SCHEMAS = Path(__file__).with_name("openai_request_schemas.json")


@cache
def schema(endpoint: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMAS.read_text())[endpoint]
    return schema


def dumps(body: object) -> bytes:
    """JSON as a client library writes it: ASCII, so a lone surrogate goes out as `\\ud800`
    and a float NaN as the bare token `NaN` (which is not JSON)."""
    return json.dumps(body).encode()


def base(endpoint: str, **fields: Any) -> dict[str, Any]:
    """A small valid body, with `fields` set (a value of `...` removes the field)."""
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 16}
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": "hello there"}]
    else:
        body["prompt"] = "hello there"
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


# -- generated bodies ---------------------------------------------------------------------


def valid(endpoint: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies valid against OpenAI's schema, for our test model."""
    validator = Draft202012Validator(schema(endpoint))
    bodies = _strategy(schema(endpoint)).map(lambda body: {**body, "model": MODEL})
    return bodies.filter(validator.is_valid)


def _strategy(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for `node`, built once: objects, arrays, unions and nullable types here,
    the rest by hypothesis-jsonschema. (hypothesis-jsonschema alone re-canonicalises each
    property's schema on every draw: most of a second per chat body.)"""
    keys = set(node)
    kind = node.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        return st.none() | _strategy({**node, "type": rest[0] if len(rest) == 1 else rest})
    if kind == "object" and keys <= {"type", "properties", "required", "additionalProperties"}:
        extra = node.get("additionalProperties")
        if (isinstance(extra, dict) or extra is True) and "properties" not in node:
            values = _strategy(extra) if isinstance(extra, dict) else _json_values()
            return st.dictionaries(st.text(max_size=12), values, max_size=3)
        properties = node.get("properties", {})
        required = node.get("required", [])
        return st.fixed_dictionaries(
            {name: _strategy(properties[name]) for name in required},
            optional={n: _strategy(s) for n, s in properties.items() if n not in required},
        )
    if kind == "array" and keys <= {"type", "items", "minItems", "maxItems"}:
        low = node.get("minItems", 0)
        return st.lists(
            _strategy(node.get("items", {})),
            min_size=low,
            max_size=min(node.get("maxItems", low + 3), low + 3),
        )
    for union in ("anyOf", "oneOf"):
        if keys == {union}:
            return st.one_of([_strategy(branch) for branch in node[union]])
    return from_schema(node)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )


def has_type(kind: str, value: object) -> bool:
    """Whether `value` has JSON type `kind` as the gateway must read it."""
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "string-list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "messages":
        return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)
    if kind == "prompt":
        return isinstance(value, str) or (
            isinstance(value, list)
            and (
                all(isinstance(v, str) for v in value) or all(has_type("integer", v) for v in value)
            )
        )
    raise ValueError(kind)


# The fields the gateway reads (chat_request.py), the JSON type each must have, and values
# of another type a client might plausibly send. `null` is left out: the spec allows it
# for most of them.
READ_FIELDS: dict[str, tuple[str, list[Any]]] = {
    "model": ("string", [5, True, ["test/echo"], {"id": "test/echo"}, 1.5]),
    "models": ("string-list", ["test/echo", 5, {"a": "test/echo"}, [5], [["test/echo"]]]),
    "max_tokens": ("integer", ["5", 5.0, 5.5, True, False, [5], {"value": 5}, "", "1e3"]),
    "max_completion_tokens": ("integer", ["5", 5.0, True, [5], {"value": 5}]),
    "n": ("integer", [True, "2", 2.0, [2], {"n": 2}, "x"]),
    "stream": ("boolean", ["true", 1, 0, "yes", "false", "1", 1.0, [], {}, "on"]),
    "stream_options": ("object", ["x", 1, [], True, [{"include_usage": True}]]),
}
CHAT_FIELDS: dict[str, tuple[str, list[Any]]] = {
    "messages": (
        "messages",
        ["hi", {}, [], ["hi"], [[]], [5], {"role": "user", "content": "hi"}, True],
    ),
}
TEXT_FIELDS: dict[str, tuple[str, list[Any]]] = {
    "prompt": ("prompt", [5, {"a": 1}, [1.5], [[1, "a"]], True, [True], [None], [1, "a"]]),
}
# Fields whose only correct answer to a wrong type is a 400: no coercion can make them right.
MUST_REFUSE = frozenset({"model", "models", "messages", "prompt"})


@dataclass(frozen=True)
class WrongType:
    endpoint: str
    field: str
    kind: str
    value: Any

    @property
    def raw(self) -> bytes:
        return dumps(base(self.endpoint, **{self.field: self.value}))


def _fields(endpoint: str) -> dict[str, tuple[str, list[Any]]]:
    return {**READ_FIELDS, **(CHAT_FIELDS if endpoint == "chat" else TEXT_FIELDS)}


def wrong_type_examples() -> list[WrongType]:
    """Every listed wrong value of every field, on both endpoints."""
    return [
        WrongType(endpoint, name, kind, value)
        for endpoint in PATHS
        for name, (kind, examples) in _fields(endpoint).items()
        for value in examples
    ]


def wrong_type(endpoint: str) -> st.SearchStrategy[WrongType]:
    """Any JSON value but `null` that is not of the field's type, in a field the gateway
    reads."""
    fields = _fields(endpoint)

    def for_field(name: str) -> st.SearchStrategy[WrongType]:
        kind, _ = fields[name]
        values = _json_values().filter(lambda v: v is not None and not has_type(kind, v))
        return values.map(lambda v: WrongType(endpoint, name, kind, v))

    return st.sampled_from(sorted(fields)).flatmap(for_field)


def missing_required(endpoint: str) -> list[tuple[set[str], bytes]]:
    """(the params a 400 may name, the body)."""
    second = "messages" if endpoint == "chat" else "prompt"
    return [
        ({"model"}, dumps(base(endpoint, model=...))),
        ({second}, dumps(base(endpoint, **{second: ...}))),
        ({"model", second}, dumps({})),
    ]
