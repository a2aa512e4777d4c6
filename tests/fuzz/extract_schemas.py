"""Regenerate `openai_request_schemas.json`: the request bodies of OpenAI's two completion
endpoints, as plain JSON Schema a generator (hypothesis-jsonschema) can use.

Source: OpenAI's published OpenAPI spec, https://github.com/openai/openai-openapi,
file `openapi.json` at commit f85dbe223d40e1a31cba812ab2d755c7e98a92a3 (2026-08-21, spec
version 2.3.0), extracted on 2026-12-02. To refresh it:

    git clone https://github.com/openai/openai-openapi /tmp/openai-openapi
    .venv/bin/python tests/fuzz/extract_schemas.py /tmp/openai-openapi/openapi.json

(a YAML spec works too). Then update the source line in `SOURCE` below.

What the extraction does, so the file stays small and generator-friendly:
- every `$ref` is inlined; a schema that refers back to itself is cut after `MAX_DEPTH`
  levels (the cut accepts any JSON value);
- `allOf` of object schemas is merged into one object schema;
- OpenAPI's `nullable: true` becomes a JSON Schema `null` type;
- `anyOf: [{type: string}, {enum of strings}]` (model and voice ids) becomes a string;
- descriptions, titles, examples, defaults, formats, discriminators and `x-` extensions
  are dropped; only validation keywords are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REQUESTS = {"chat": "CreateChatCompletionRequest", "completions": "CreateCompletionRequest"}
SOURCE = (
    "https://github.com/openai/openai-openapi openapi.json at commit "
    "f85dbe223d40e1a31cba812ab2d755c7e98a92a3 (2026-08-21, spec 2.3.0), extracted 2026-12-02"
)
OUT = Path(__file__).with_name("openai_request_schemas.json")
MAX_DEPTH = 2  # times one named schema may appear on the path from the root
KEYWORDS = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "items",
    "prefixItems", "anyOf", "oneOf", "allOf", "not", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "minItems",
    "maxItems", "uniqueItems", "minProperties", "maxProperties", "propertyNames",
}  # fmt: skip
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "not", "additionalProperties", "propertyNames")


def load(path: Path) -> Any:
    """The spec, JSON or YAML."""
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """The two request schemas, resolved and trimmed."""
    components = spec["components"]["schemas"]
    out: dict[str, Any] = {"source": SOURCE}
    for name, component in REQUESTS.items():
        out[name] = _resolve({"$ref": f"#/components/schemas/{component}"}, components, ())
    return out


def _resolve(node: Any, components: dict[str, Any], path: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if path.count(name) >= MAX_DEPTH:
            return {}  # the recursion stops here: anything goes
        target = _resolve(components[name], components, (*path, name))
        if node.get("nullable") is True:
            target = _nullable(target)
        return target
    schema: dict[str, Any] = {}
    for key, value in node.items():
        if key not in KEYWORDS:
            continue
        if key == "properties":
            schema[key] = {p: _resolve(s, components, path) for p, s in value.items()}
        elif key in _SCHEMA_LISTS:
            schema[key] = [_resolve(s, components, path) for s in value]
        elif key in _SCHEMA_VALUES and isinstance(value, dict):
            schema[key] = _resolve(value, components, path)
        else:
            schema[key] = value
    if "allOf" in schema:
        schema = _merge_all_of(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema and _is_string_or_string_enum(schema[key]):
            del schema[key]
            schema["type"] = "string"
    if node.get("nullable") is True:
        schema = _nullable(schema)
    if schema.get("required") == []:
        del schema["required"]
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and not ({"anyOf", "oneOf", "allOf"} & schema.keys()):
        out = {**schema, "type": [kind, "null"]}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    """`allOf` of plain object schemas as one object schema (the intersection)."""
    parts = [p for p in schema["allOf"] if p]
    mergeable = {"type", "properties", "required", "additionalProperties"}
    if not all(set(p) <= mergeable and p.get("type", "object") == "object" for p in parts):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    merged["type"] = "object"
    properties: dict[str, Any] = dict(merged.get("properties", {}))
    required: list[str] = list(merged.get("required", []))
    for part in parts:
        for name, sub in part.get("properties", {}).items():
            if name in properties and properties[name] != sub:
                properties[name] = {"allOf": [properties[name], sub]}
            else:
                properties[name] = sub
        required += [r for r in part.get("required", []) if r not in required]
        if part.get("additionalProperties") is False:
            merged["additionalProperties"] = False
    merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _is_string_or_string_enum(branches: list[Any]) -> bool:
    plain = [b for b in branches if b == {"type": "string"}]
    enums = [
        b
        for b in branches
        if set(b) == {"type", "enum"}
        and b["type"] == "string"
        and all(isinstance(e, str) for e in b["enum"])
    ]
    return bool(plain) and len(plain) + len(enums) == len(branches)


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise SystemExit(f"usage: {argv[0]} OPENAPI_SPEC [OUT_JSON]")
    out = Path(argv[2]) if len(argv) == 3 else OUT
    schemas = extract(load(Path(argv[1])))
    out.write_text(json.dumps(schemas, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)
