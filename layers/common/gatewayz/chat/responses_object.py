"""The Response object (`"object": "response"`) built from a chat completion: its output
items (an assistant message, function calls), its status and its usage in the Responses
API's names, with the gateway's `usage.cost` and `provider` kept."""

from __future__ import annotations

import time
import uuid
from typing import Any

# Chat finish reasons that cut the output short, as the Responses API says it.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# What `usage` says besides the token counts (`cost`, OpenRouter's BYOK fields) passes on.
_COUNTS = {"prompt_tokens", "completion_tokens", "total_tokens"}
_DETAILS = {"prompt_tokens_details", "completion_tokens_details"}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: `resp_…`, `msg_…`, `fc_…`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def skeleton(response_id: str, model: str, echo: dict[str, Any]) -> dict[str, Any]:
    """The Response as it begins: in progress, with no output yet."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "usage": None,
        **echo,
    }


def finish(
    response: dict[str, Any],
    output: list[dict[str, Any]],
    finish_reason: object,
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Response once the answer is complete (or cut short)."""
    reason = _INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    done = {**response, "output": output, "usage": responses_usage(usage)}
    if reason is None:
        done["status"] = "completed"
        done["completed_at"] = int(time.time())
    else:
        done["status"] = "incomplete"
        done["incomplete_details"] = {"reason": reason}
    return done


def message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def from_chat(payload: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """A whole (non-streamed) chat completion as the finished Response."""
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    output: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"]))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(refusal_part(message["refusal"]))
    if parts:
        output.append(message_item(new_id("msg"), parts, "completed"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            output.append(
                call_item(
                    new_id("fc"),
                    str(call.get("id") or new_id("call")),
                    str(function.get("name") or ""),
                    str(function.get("arguments") or ""),
                    "completed",
                )
            )
    if isinstance(payload.get("model"), str):
        response = {**response, "model": payload["model"]}
    usage = payload.get("usage")
    done = finish(response, output, choice.get("finish_reason"), usage)
    if "provider" in payload:
        done["provider"] = payload["provider"]
    return done


def responses_usage(usage: object) -> dict[str, Any] | None:
    """Chat `usage` in the Responses API's names; what else it says (`cost`) kept."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = usage.get("completion_tokens_details")
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    extra = {k: v for k, v in usage.items() if k not in _COUNTS | _DETAILS}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _int(prompt_details.get("cached_tokens")),
            "cache_write_tokens": _int(prompt_details.get("cache_write_tokens")),
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": _int(completion_details.get("reasoning_tokens")),
        },
        "total_tokens": prompt + completion,
        **extra,
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
