"""What the offline model answers (docs/api.md, "The offline mock"), before it is put in
OpenAI's wire shapes (gatewayz/chat/providers/mock.py).

The text is the last `user` message (a string, or its `text` parts joined by a space;
empty if there is none); the legacy `/completions` echoes `prompt` (a list joined by a
space) as if it were the one user message. With `tools` (and `tool_choice` not "none")
each choice calls one tool instead: the one `tool_choice` names, else the first, with
arguments made from its parameters' JSON schema. A `response_format` of `json_schema`
makes the text a JSON value of that schema; `json_object` makes it `{"echo": text}`.
`stop` cuts the text before the first stop sequence; `n` repeats the answer in n choices.

Tokens are whitespace-separated words (each with the whitespace before it): prompt tokens
= Σ over messages (words + 4) + the words of `tools`, `tool_choice` and `response_format`
as JSON; completion tokens = the words output, summed over the choices, a tool call
counting its name as one. `max_tokens` (or `max_completion_tokens`) caps each choice's
tokens, which then finishes with "length".
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from gatewayz.chat.offline import json_values
from gatewayz.record import record

MAX_CHOICES = 128
_WORD = re.compile(r"\s*\S+|\s+$")  # words with the whitespace before them re-join exactly
_PROMPT_EXTRAS = ("tools", "tool_choice", "response_format")


class Refused(Exception):
    """The request asks for something OpenAI refuses: a 400 naming `param`."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message, self.param = message, param


@record
class ToolCall:
    id: str
    name: str


@record
class Output:
    """One choice: its tokens (text, or the tool call's argument fragments) and finish."""

    index: int
    pieces: tuple[str, ...]
    finish: str
    tool: ToolCall | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def tokens(self) -> int:
        return len(self.pieces) + (1 if self.tool is not None else 0)


@record
class Reply:
    outputs: tuple[Output, ...]
    usage: dict[str, int]
    top_logprobs: int | None  # alternatives per token when logprobs were asked for; else None


def reply(kind: str, body: dict[str, Any]) -> Reply:
    """The answer to a chat (`kind` "chat") or legacy ("text") completion request.

    Raises:
        Refused: a parameter OpenAI would refuse (its name in `param`).
    """
    messages = _messages(kind, body)
    last = next((text for role, text in reversed(messages) if role == "user"), "")
    tool = _tool(body) if kind == "chat" else None
    limit, choices = _limit(body), range(_choices(body))
    if tool is not None:
        name, schema = tool
        value = json_values.sample(schema)  # arguments are an object, even with no parameters
        arguments = json.dumps(value if isinstance(value, dict) else {}, ensure_ascii=False)
        outputs = [_tool_call(i, name, arguments, limit) for i in choices]
    else:
        text, stops = _content(kind, body, last), _stops(body)
        outputs = [_text(i, text, stops, limit) for i in choices]
    extras = [body[name] for name in _PROMPT_EXTRAS if kind == "chat" and body.get(name)]
    prompt = sum(len(text.split()) + 4 for _, text in messages)
    prompt += len(json.dumps(extras).split()) if extras else 0
    completion = sum(o.tokens for o in outputs)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return Reply(tuple(outputs), {**usage, "total_tokens": prompt + completion}, _top(kind, body))


def _text(index: int, text: str, stops: list[str], limit: int | None) -> Output:
    cut = min((i for s in stops if (i := text.find(s)) >= 0), default=len(text))
    pieces: list[str] = _WORD.findall(text[:cut])
    if limit is not None and limit < len(pieces):
        return Output(index, tuple(pieces[:limit]), "length")
    return Output(index, tuple(pieces), "stop")


def _tool_call(index: int, name: str, arguments: str, limit: int | None) -> Output:
    if limit == 0:
        return Output(index, (), "length")
    pieces: list[str] = _WORD.findall(arguments)
    call = ToolCall(f"call_{secrets.token_hex(12)}", name)
    if limit is not None and limit - 1 < len(pieces):
        return Output(index, tuple(pieces[: limit - 1]), "length", call)
    return Output(index, tuple(pieces), "tool_calls", call)


def _content(kind: str, body: dict[str, Any], last: str) -> str:
    """The text to answer: the echo, or JSON as `response_format` asks."""
    fmt = body.get("response_format") if kind == "chat" else None
    if fmt is None:
        return last.strip()
    shape = fmt.get("type") if isinstance(fmt, dict) else None
    if shape == "text":
        return last.strip()
    if shape == "json_object":
        return json.dumps({"echo": last.strip()}, ensure_ascii=False)
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if shape != "json_schema" or not isinstance(spec, dict) or "schema" not in spec:
        raise Refused(
            "`response_format` must be {type: text}, {type: json_object} or "
            "{type: json_schema, json_schema: {name, schema}}.",
            "response_format",
        )
    return json.dumps(json_values.sample(spec["schema"]), ensure_ascii=False)


def _tool(body: dict[str, Any]) -> tuple[str, object] | None:
    """The function tool to call (its name and parameters' schema), or None to answer text."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools:
        if choice not in (None, "none"):
            raise Refused("`tool_choice` is only allowed when `tools` are given.", "tool_choice")
        return None
    if choice == "none":
        return None
    functions: dict[str, object] = {}
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and tool.get("type") == "function":
            name = function.get("name")
            if isinstance(name, str):
                functions.setdefault(name, function.get("parameters") or {})
    names = _allowed(choice)
    chosen = next((n for n in names or functions if n in functions), None)
    if chosen is None:
        if names is not None or choice == "required":
            raise Refused("`tool_choice` names no function among `tools`.", "tool_choice")
        return None  # "auto" and no function tool: answer text
    return chosen, functions[chosen]


def _allowed(choice: object) -> list[str] | None:
    """The function names `tool_choice` restricts the call to; None: any."""
    if choice in (None, "auto", "required"):
        return None
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str):
            return [name]
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools")
        tools = allowed.get("tools") if isinstance(allowed, dict) else None
        if isinstance(tools, list):
            return [
                t["function"]["name"]
                for t in tools
                if isinstance(t, dict)
                and isinstance(t.get("function"), dict)
                and isinstance(t["function"].get("name"), str)
            ]
    raise Refused(
        '`tool_choice` must be "none", "auto", "required" or name a function.', "tool_choice"
    )


def _messages(kind: str, body: dict[str, Any]) -> list[tuple[object, str]]:
    """(role, text) of each message; a legacy prompt is one user message. An assistant's
    tool calls count as text of its message."""
    if kind == "text":
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)
        return [("user", prompt if isinstance(prompt, str) else "")]
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    out = []
    for message in messages:
        if isinstance(message, dict):
            text = _message_text(message.get("content"))
            if message.get("tool_calls"):
                text = f"{text} {json.dumps(message['tool_calls'])}"
            out.append((message.get("role"), text))
    return out


def _message_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return " ".join(p for p in parts if isinstance(p, str))


def _limit(body: dict[str, Any]) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        value = _whole(body.get(field))
        if value is not None and value >= 0:
            return value
    return None


def _choices(body: dict[str, Any]) -> int:
    if body.get("n") is None:
        return 1
    n = _whole(body["n"])
    if n is None or not 1 <= n <= MAX_CHOICES:
        raise Refused(f"`n` must be an integer from 1 to {MAX_CHOICES}.", "n")
    return n


def _stops(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if stop is not None else []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise Refused("`stop` must be a string or a list of strings.", "stop")
    return [s for s in stops if s]


def _top(kind: str, body: dict[str, Any]) -> int | None:
    """How many alternatives to list per token, or None for no logprobs at all."""
    logprobs, asked = body.get("logprobs"), body.get("top_logprobs")
    if kind == "text":  # legacy: `logprobs` is the number of alternatives
        if logprobs is None:
            return None
        count = _whole(logprobs)
        if count is None or not 0 <= count <= 5:
            raise Refused("`logprobs` must be an integer from 0 to 5.", "logprobs")
        return count
    top = _whole(asked)
    if asked is not None and (top is None or not 0 <= top <= 20):
        raise Refused("`top_logprobs` must be an integer from 0 to 20.", "top_logprobs")
    if logprobs is True:
        return top or 0
    if asked is not None:
        raise Refused("`top_logprobs` requires `logprobs: true`.", "top_logprobs")
    return None


def _whole(value: object) -> int | None:
    """`value` if it is a JSON integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
