"""What every answer and chunk looks like to the client, whoever served it (docs/api.md,
answers): OpenAI's shape, not the provider's.

- `model` is the catalog id the request was served as (`openai/gpt-4o-mini`), never the
  provider's own id for it; `provider` says who served it.
- `finish_reason` is one of OpenAI's values; the provider's own, when it differs, stays in
  `native_finish_reason` (as OpenRouter reports it).
"""

from __future__ import annotations

from typing import Any

# OpenAI's values, and `error`: the gateway's own in-band error chunk (OpenRouter's too).
OPENAI_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_KEPT = OPENAI_REASONS | {"error"}

# Other providers' words for the same ends (Anthropic, Gemini, Cohere, TGI, vLLM, ...),
# compared lower-cased.
_NORMALISED = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "complete": "stop",
    "finish": "stop",
    "finished": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_length": "length",
    "token_limit": "length",
    "tool_use": "tool_calls",
    "tool_call": "tool_calls",
    "function_calls": "tool_calls",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "refusal": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(native: str) -> str:
    """OpenAI's value for a provider's finish reason (an unknown one: `stop`, the model
    ended its turn; the raw value stays in `native_finish_reason`)."""
    if native in _KEPT:
        return native
    lowered = native.lower()
    if lowered in _KEPT:
        return lowered
    return _NORMALISED.get(lowered, "stop")


def choice(item: dict[str, Any]) -> dict[str, Any]:
    """A choice with its `finish_reason` normalised (in place; returned for chaining)."""
    native = item.get("finish_reason")
    if isinstance(native, str):
        normal = finish_reason(native)
        if normal != native:
            item["finish_reason"] = normal
            item.setdefault("native_finish_reason", native)
    return item


def shape(payload: dict[str, Any], model: str) -> dict[str, Any]:
    """An answer or a chunk as the client sees it (in place; returned for chaining)."""
    if "model" in payload or "choices" in payload:
        payload["model"] = model
    choices = payload.get("choices")
    if isinstance(choices, list):
        for item in choices:
            if isinstance(item, dict):
                choice(item)
    return payload
