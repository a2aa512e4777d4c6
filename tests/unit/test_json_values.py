"""The offline model's JSON values: every sample is valid under its schema, as the
`jsonschema` validator judges it, and the same schema always gives the same value."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
import pydantic
import pytest
from openai.lib._pydantic import to_strict_json_schema

from gatewayz.chat.offline.json_values import MAX_DEPTH, sample


class Address(pydantic.BaseModel):
    street: str
    postcode: str = pydantic.Field(min_length=5, max_length=5)


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=18, le=120)
    height_m: float = pydantic.Field(gt=0, lt=1)
    role: Literal["admin", "member"]
    home: Address
    others: list[Address]
    nickname: str | None
    email: str = pydantic.Field(json_schema_extra={"format": "email"})


class Tree(pydantic.BaseModel):
    label: str
    children: list[Tree]


SCHEMAS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "string", "minLength": 12, "maxLength": 14},
    {"type": "string", "maxLength": 2},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "uuid"},
    {"type": "integer", "minimum": 40, "maximum": 50, "multipleOf": 7},
    {"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 3},
    {"type": "integer", "maximum": -5},
    {"type": "number", "exclusiveMinimum": 2.5},
    {"type": "number", "minimum": -1, "maximum": 0},
    {"type": "boolean"},
    {"type": "null"},
    {"type": ["null", "integer"]},
    {"enum": ["red", "green"]},
    {"const": {"fixed": [1, 2]}},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3},
    {"type": "array", "items": {"type": "string"}, "maxItems": 0},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "minItems": 2},
    {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["x"]}]},
    {"oneOf": [{"type": "integer", "minimum": 3}, {"type": "string"}]},
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    },
    {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1},
        },
        "required": ["location", "unit", "days"],
        "additionalProperties": False,
    },
    {"type": "object"},
    {"properties": {"tags": {"items": {"type": "string"}}}, "required": ["tags"]},
    to_strict_json_schema(Person),
    to_strict_json_schema(Tree),
    Person.model_json_schema(),
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: str(s)[:60])
def test_every_sample_is_valid_under_its_schema(schema: dict[str, Any]) -> None:
    value = sample(schema)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    assert sample(schema) == value


def test_a_pydantic_model_parses_its_own_sample() -> None:
    person = Person.model_validate(sample(to_strict_json_schema(Person)))
    assert person.role == "admin"  # an enum's first value
    assert person.home.postcode
    assert len(person.home.postcode) == 5
    assert len(person.others) == 1
    assert 0 < person.height_m < 1
    assert 18 <= person.age <= 120


def test_required_properties_are_always_there_and_objects_have_every_property() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["b"],
    }
    assert sample(schema) == {"a": "a", "b": 1}


def test_a_recursive_schema_ends() -> None:
    tree = sample(to_strict_json_schema(Tree))
    depth = 0
    while tree["children"]:
        tree, depth = tree["children"][0], depth + 1
    assert 0 < depth <= MAX_DEPTH


@pytest.mark.parametrize("schema", [True, {}, None, {"$ref": "#/nowhere"}, {"$ref": "http://x"}])
def test_a_schema_that_accepts_anything_gets_null(schema: object) -> None:
    assert sample(schema) is None
