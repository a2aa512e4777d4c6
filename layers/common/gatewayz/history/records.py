"""A chat message as history stores it and gives it back (docs/api.md, chat history).

Stored: the role, `content` as the client sent it (a string, content parts, or null),
its text for search, the other fields a replay needs (`extra`: name, tool calls, tool
call id, refusal) and a typical token count, the same count the chat path's prompt
estimate makes (chat/prompt_size.py), so injection can keep a session's history within a
token budget without a tokenizer. NUL characters, which PostgreSQL text and jsonb
refuse, are stored as U+FFFD.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatewayz import errors
from gatewayz.chat import prompt_size
from gatewayz.chat import request as chat_request

ROLES = ("system", "developer", "user", "assistant", "tool")
SYSTEM_ROLES = frozenset({"system", "developer"})
EXTRA_FIELDS = ("name", "tool_calls", "tool_call_id", "refusal")
MAX_MESSAGES = 100  # appended in one request


class MessageIn(BaseModel):
    """One message a client appends: the chat message shape, plus its parent."""

    model_config = ConfigDict(strict=True, extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[chat_request.ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None


class MessagesIn(BaseModel):
    """`POST /v1/chat/sessions/{id}/messages`: one message, or `messages`, after `parent_id`
    (default: the session's newest message)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    parent_id: int | None = Field(default=None, ge=1)


def parse_append(body: object) -> tuple[list[dict[str, Any]], int | None]:
    """The messages to append (as dicts, without nulls) and the parent named.

    Raises:
        InvalidRequest: naming the first bad field.
    """
    if isinstance(body, dict) and "messages" not in body and "role" in body:
        parent = body.get("parent_id")
        body = {"messages": [{k: v for k, v in body.items() if k != "parent_id"}]}
        if parent is not None:
            body["parent_id"] = parent
    try:
        parsed = MessagesIn.model_validate(body)
    except ValidationError as exc:
        raise chat_request.invalid(exc) from None
    messages = [m.model_dump(exclude_none=True) for m in parsed.messages]
    for i, message in enumerate(messages):
        message.setdefault("content", None)
        try:  # what injection will send must be something the chat path can bound
            prompt_size.of_chat({"messages": [message]})
        except errors.InvalidRequest as exc:
            raise errors.InvalidRequest(
                exc.message, param=(exc.param or "").replace("messages[0]", f"messages[{i}]")
            ) from None
    return messages, parsed.parent_id


def stored(
    message: dict[str, Any], *, model: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """`message` (a chat message) as `chat_messages_append` takes it."""
    message = _clean(message)
    content = message.get("content")
    return {
        "role": message["role"],
        "content": content,
        "content_text": text_of(content),
        "extra": {k: message[k] for k in EXTRA_FIELDS if message.get(k) is not None},
        "model": model,
        "request_id": request_id,
        "tokens": tokens_of(message),
    }


def replayed(role: str, content: Any, extra: dict[str, Any] | None) -> dict[str, Any]:
    """A stored message as a chat request carries it."""
    return {"role": role, "content": content, **(extra or {})}


def tokens_of(message: dict[str, Any]) -> int:
    """The typical token count of one message, as the chat path's prompt estimate makes it."""
    size = len(json.dumps(message, ensure_ascii=False).encode())
    return -(-size // prompt_size.TYPICAL_BYTES_PER_TOKEN) + prompt_size.PER_MESSAGE_TOKENS


def text_of(content: Any) -> str:
    """The searchable text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def session_uuid(value: str) -> str | None:
    """`value` as a canonical session id, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value
