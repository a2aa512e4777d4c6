"""A Responses API request (`POST /v1/responses`) read, checked and translated into the
chat completion request the providers serve (none here has a native Responses API).

The gateway is stateless: `store` is accepted and nothing is stored, and
`previous_response_id` (history kept by the server) is refused with a 400 naming it.
Every field is checked for its JSON type as the chat request's are, and every refusal
names the Responses field (`input[2].call_id`), not the chat field it becomes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatewayz import errors
from gatewayz.chat import request as chat_request
from gatewayz.record import record

# Fields passed to the chat request as they are (OpenRouter's routing fields included).
_PASSED = (
    "model", "models", "provider", "temperature", "top_p", "parallel_tool_calls", "user",
    "metadata", "service_tier", "stream", "seed", "stop", "frequency_penalty",
    "presence_penalty", "plugins", "transforms", "route",
)  # fmt: skip
# Server-side features this stateless gateway does not have.
_UNSUPPORTED = {
    "previous_response_id": "`previous_response_id` is not supported: the Responses API "
    "stores no responses here. Send the whole conversation in `input`, or keep it in a chat "
    "session (`session_id` on /v1/chat/completions).",
    "conversation": "`conversation` is not supported: this gateway keeps no conversations. "
    "Send the whole conversation in `input`.",
    "prompt": "`prompt` (stored prompt templates) is not supported: send `instructions`.",
}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _Text(_Strict):
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class _Reasoning(_Strict):
    effort: str | None = None
    summary: str | None = None


class ResponsesBody(_Strict):
    """The Responses API request fields the gateway reads (others are ignored)."""

    model: str | None = Field(default=None, min_length=1)
    models: list[str] | None = None
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: _Text | None = None
    max_output_tokens: int | None = chat_request.OutputTokens
    temperature: float | None = None
    top_p: float | None = None
    stream: bool | None = None
    store: bool | None = None
    background: bool | None = None
    metadata: dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    reasoning: _Reasoning | None = None
    provider: dict[str, Any] | None = None


@record
class ResponsesRequest:
    """The translated chat request, and what the answer repeats of the request."""

    chat: chat_request.CompletionRequest
    echo: dict[str, Any]  # the request fields every Response object carries


def parse(body: object) -> ResponsesRequest:
    """Check a Responses request and translate it.

    Raises:
        InvalidRequest: naming the first bad Responses parameter.
    """
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    body = {k: v for k, v in body.items() if v is not None}  # null means absent
    for name, message in _UNSUPPORTED.items():
        if name in body:
            raise errors.InvalidRequest(message, param=name)
    try:
        parsed = ResponsesBody.model_validate(body)
    except ValidationError as exc:
        raise chat_request.invalid(exc) from None
    if parsed.background:
        raise errors.InvalidRequest(
            "`background` is not supported: this gateway keeps no responses to poll.",
            param="background",
        )
    chat: dict[str, Any] = {k: body[k] for k in _PASSED if k in body}
    chat["messages"] = _messages(parsed)
    if not chat["messages"]:
        raise errors.InvalidRequest("`input` has no message.", param="input")
    if parsed.tools:
        chat["tools"] = [_tool(i, t) for i, t in enumerate(parsed.tools)]
    if "tool_choice" in body:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if parsed.text is not None:
        if parsed.text.format is not None:
            response_format = _format(parsed.text.format)
            if response_format is not None:
                chat["response_format"] = response_format
        if parsed.text.verbosity is not None:
            chat["verbosity"] = parsed.text.verbosity
    if parsed.reasoning is not None and parsed.reasoning.effort is not None:
        chat["reasoning_effort"] = parsed.reasoning.effort
    if parsed.max_output_tokens is not None:
        chat["max_completion_tokens"] = parsed.max_output_tokens
    if parsed.stream:  # a Responses stream always ends with its usage
        chat["stream_options"] = {"include_usage": True}
    translated = chat_request.parse(chat, chat=True)
    if parsed.max_output_tokens is not None:
        translated = replace(translated, max_output_param="max_output_tokens")
    return ResponsesRequest(chat=translated, echo=_echo(body, parsed))


def _echo(body: dict[str, Any], parsed: ResponsesBody) -> dict[str, Any]:
    text: dict[str, Any] = body["text"] if isinstance(body.get("text"), dict) else {}
    return {
        "instructions": parsed.instructions,
        "max_output_tokens": parsed.max_output_tokens,
        "metadata": parsed.metadata or {},
        "parallel_tool_calls": parsed.parallel_tool_calls is not False,
        "temperature": parsed.temperature,
        "top_p": parsed.top_p,
        "tools": parsed.tools or [],
        "tool_choice": body.get("tool_choice", "auto"),
        "text": {"format": {"type": "text"}, **text},
        "store": False,  # accepted, never stored: nothing to retrieve later
        "user": parsed.user,
    }


def _messages(parsed: ResponsesBody) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if parsed.instructions:
        messages.append({"role": "system", "content": parsed.instructions})
    if isinstance(parsed.input, str):
        messages.append({"role": "user", "content": parsed.input})
        return messages
    for index, item in enumerate(parsed.input):
        _item(messages, item, f"input[{index}]")
    return messages


def _item(messages: list[dict[str, Any]], item: dict[str, Any], at: str) -> None:
    """Append one input item as chat messages: a run of function calls becomes one
    assistant message with its `tool_calls`."""
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise _bad(f"{at}.role", 'must be "user", "system", "developer" or "assistant"')
        content = item.get("content")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
        elif isinstance(content, list):
            parts = [_part(p, f"{at}.content[{i}]") for i, p in enumerate(content)]
            if role == "assistant":  # prior output: its text
                texts = [p["text"] for p in parts if p.get("type") == "text"]
                messages.append({"role": role, "content": "".join(texts)})
            else:
                messages.append({"role": role, "content": parts})
        else:
            raise _bad(f"{at}.content", "must be a string or a list of content parts")
    elif kind == "function_call":
        call = {
            "id": _string(item, "call_id", at),
            "type": "function",
            "function": {
                "name": _string(item, "name", at),
                "arguments": _string(item, "arguments", at),
            },
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            parts = [_part(p, f"{at}.output[{i}]") for i, p in enumerate(output)]
            output = "".join(p["text"] for p in parts if p.get("type") == "text")
        elif not isinstance(output, str):
            raise _bad(f"{at}.output", "must be a string or a list of content parts")
        call_id = _string(item, "call_id", at)
        messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
    elif kind == "reasoning":
        return  # a model's earlier reasoning: nothing a chat provider takes back
    else:
        raise errors.InvalidRequest(
            f"Input items of type `{errors.quote(str(kind))}` are not supported: send "
            "messages, `function_call` and `function_call_output` items.",
            param=f"{at}.type",
        )


def _part(part: object, at: str) -> dict[str, Any]:
    """One content part as a chat content part."""
    if not isinstance(part, dict):
        raise _bad(at, "must be an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _string(part, "text", at)}
    if kind == "refusal":
        return {"type": "text", "text": _string(part, "refusal", at)}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise errors.InvalidRequest(
                f"`{at}.image_url` is required: images by `file_id` are not supported.",
                param=f"{at}.image_url",
            )
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        file = {"file_data": part["file_data"]}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise errors.InvalidRequest(
        f"Content parts of type `{errors.quote(str(kind))}` are not supported: send "
        "`input_text`, `input_image` with `image_url`, or `input_file` with `file_data`.",
        param=f"{at}.type",
    )


def _tool(index: int, tool: dict[str, Any]) -> dict[str, Any]:
    """A Responses function tool (flat) as a chat tool (under `function`)."""
    at = f"tools[{index}]"
    if tool.get("type") != "function":
        raise errors.InvalidRequest(
            f"Tools of type `{errors.quote(str(tool.get('type')))}` are not supported: "
            "only `function` tools.",
            param=f"{at}.type",
        )
    function: dict[str, Any] = {"name": _string(tool, "name", at)}
    for field in ("description", "parameters", "strict"):
        if tool.get(field) is not None:
            function[field] = tool[field]
    return {"type": "function", "function": function}


def _tool_choice(choice: object) -> object:
    if isinstance(choice, str):
        return choice
    assert isinstance(choice, dict)  # the model checked it
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}
    if choice.get("type") == "allowed_tools":
        tools = choice.get("tools")
        if not isinstance(tools, list):
            raise _bad("tool_choice.tools", "must be a list of tools")
        allowed = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _bad(f"tool_choice.tools[{i}]", "must be an object")
            name = _string(tool, "name", f"tool_choice.tools[{i}]")
            allowed.append({"type": "function", "function": {"name": name}})
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": allowed},
        }
    raise errors.InvalidRequest(
        '`tool_choice` must be "none", "auto", "required", a function or `allowed_tools`.',
        param="tool_choice",
    )


def _format(spec: dict[str, Any]) -> dict[str, Any] | None:
    """`text.format` as the chat `response_format`; None for plain text."""
    kind = spec.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise _bad("text.format.schema", "must be a JSON schema object")
        json_schema: dict[str, Any] = {"name": _string(spec, "name", "text.format")}
        json_schema["schema"] = schema
        for field in ("description", "strict"):
            if spec.get(field) is not None:
                json_schema[field] = spec[field]
        return {"type": "json_schema", "json_schema": json_schema}
    raise _bad("text.format.type", 'must be "text", "json_object" or "json_schema"')


def _string(item: dict[str, Any], field: str, at: str) -> str:
    value = item.get(field)
    if not isinstance(value, str):
        raise errors.InvalidRequest(
            f"`{errors.quote(at)}.{field}` is required and must be a string.",
            param=f"{at}.{field}",
        )
    return value


def _bad(param: str, what: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(f"Invalid value for `{errors.quote(param)}`: {what}.", param=param)
