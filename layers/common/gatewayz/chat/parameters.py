"""`provider.require_parameters` (OpenRouter's switch; docs/api.md): serve a request only
with models whose `supported_parameters` (as `GET /v1/models` lists them) include every
model parameter the request sets.

The parameters checked are the sampling and output controls below, each under the
`supported_parameters` name that covers it (`max_completion_tokens` is `max_tokens`,
`reasoning_effort` is `reasoning`). A field left out or `null` asks for nothing. The
request's routing fields, messages, streaming and metadata are not model parameters.
Without the switch nothing is checked: a provider ignores what it does not support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import errors

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gatewayz.chat.model import Model

_NAMES = (
    "max_tokens", "temperature", "top_p", "top_k", "min_p", "top_a", "frequency_penalty",
    "presence_penalty", "repetition_penalty", "seed", "stop", "logit_bias", "logprobs",
    "top_logprobs", "n", "best_of", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "structured_outputs", "reasoning", "include_reasoning", "verbosity",
    "web_search_options", "prediction",
)  # fmt: skip
# Request field -> the supported_parameters entry that covers it.
COVERED_BY = {
    **{name: name for name in _NAMES},
    "max_completion_tokens": "max_tokens",
    "reasoning_effort": "reasoning",
}


def unsupported(model: Model, body: dict[str, Any]) -> list[str]:
    """The request's fields that `model` does not list as supported, in request order."""
    listed = set(model.supported_parameters)
    return [
        field
        for field, value in body.items()
        if value is not None and field in COVERED_BY and COVERED_BY[field] not in listed
    ]


def supporting(models: Sequence[Model], body: dict[str, Any]) -> list[Model]:
    """The models (in order) that support every parameter the request sets.

    Raises:
        InvalidRequest: none does; `param` names the first model's first unsupported field.
    """
    kept = [m for m in models if not unsupported(m, body)]
    if kept or not models:
        return kept
    first = models[0]
    field = unsupported(first, body)[0]
    listed = ", ".join(first.supported_parameters) or "none"
    raise errors.InvalidRequest(
        f"`{first.id}` does not support `{field}` (its supported_parameters: {listed}), and "
        "`provider.require_parameters` is true. Leave the parameter out, or the switch.",
        param=field,
    )
