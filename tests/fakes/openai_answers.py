"""What the fake upstream (tests/fakes/openai_upstream.py) answers when a test scripts no
content: as an OpenAI-compatible model does when asked for tools or structured output.

With function `tools` (and `tool_choice` not "none") the model calls one tool: the one
`tool_choice` names, else the first, with arguments that its parameters' JSON schema
accepts. A `response_format` of `json_schema` makes the answer a JSON value of that
schema, `json_object` a JSON object (`{"echo": text}`); otherwise the text is echoed.
The values come from the same deterministic sampler as the gateway's offline mock
(gatewayz/chat/offline/json_values.py), so a client suite can expect the same values from
both: a string named after its property, 1 for an integer, the first enum value.

Embeddings come back as floats, or with `encoding_format: "base64"` as OpenAI encodes
them: each vector's little-endian float32 bytes in base64.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
from typing import Any

from gatewayz.chat.offline.json_values import sample


def tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool call a model makes for this chat request, or None to answer in text."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    functions = [
        t["function"]
        for t in tools
        if isinstance(t, dict)
        and t.get("type") == "function"
        and isinstance(t.get("function"), dict)
    ]
    function = choice.get("function") if isinstance(choice, dict) else None
    named = function.get("name") if isinstance(function, dict) else None
    chosen = next((f for f in functions if named in (None, f.get("name"))), None)
    if chosen is None:
        return None
    value = sample(chosen.get("parameters") or {})
    arguments = json.dumps(value if isinstance(value, dict) else {})
    name = chosen.get("name")
    return {
        "id": f"call_{secrets.token_hex(12)}",
        "type": "function",
        "function": {"name": name if isinstance(name, str) else "", "arguments": arguments},
    }


def content(body: dict[str, Any], echo: str) -> str:
    """The text answer: JSON as `response_format` asks, else the echo."""
    fmt = body.get("response_format")
    shape = fmt.get("type") if isinstance(fmt, dict) else None
    if shape == "json_object":
        return json.dumps({"echo": echo})
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if shape == "json_schema" and isinstance(spec, dict):
        return json.dumps(sample(spec.get("schema") or {}))
    return echo


def encoded(vector: list[float], body: dict[str, Any]) -> list[float] | str:
    """`vector` as the request's `encoding_format` asks: floats, or base64 float32."""
    if body.get("encoding_format") != "base64":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
