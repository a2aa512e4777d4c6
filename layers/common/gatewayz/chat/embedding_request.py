"""An embeddings request as the gateway reads it (docs/api.md, embeddings).

OpenAI's fields, checked for their JSON types as strictly as completions are: `model`,
`input` (a string, a list of strings, a token-id array or a list of them), `dimensions`,
`encoding_format` (`float` or `base64`) and `user`, plus OpenRouter's `models` and
`provider`. Unknown fields pass through. An empty input, more than `MAX_INPUTS` inputs
or a `dimensions` below 1 is a 400 naming the field, before anything is held.

The size of the input bounds the credit hold: a byte-level tokenizer makes at most one
token per UTF-8 byte, and an embedding model adds a few tokens of its own per input.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatewayz import errors
from gatewayz.chat import prompt_size
from gatewayz.chat import request as chat_request
from gatewayz.record import record

MAX_INPUTS = 2048  # OpenAI's limit per request
MAX_DIMENSIONS = 65_536  # beyond any model's; the model itself may allow fewer
PER_INPUT_TOKENS = 8  # special tokens (BOS/EOS, CLS/SEP) a model adds to each input


class EmbeddingBody(BaseModel):
    """OpenAI's embeddings request plus OpenRouter's `models` and `provider`."""

    model_config = ConfigDict(strict=True, extra="allow")

    model: str | None = Field(default=None, min_length=1)
    models: list[str] | None = None
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int | None = Field(default=None, ge=1, le=MAX_DIMENSIONS)
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None
    provider: dict[str, Any] | None = None


@record
class EmbeddingRequest:
    """What the gateway needs to know about an embeddings request."""

    body: dict[str, Any]  # what goes upstream (before the provider's own changes)
    models: tuple[str, ...]  # `model` first, then the `models` fallbacks
    inputs: int
    base64: bool  # the client wants each vector as base64 little-endian float32
    bound: int  # tokens of every input, at most
    typical: int  # tokens of every input, typically
    longest_typical: int  # of the longest input: what must fit the model's context

    @property
    def model(self) -> str:
        return self.models[0]


def parse(body: object) -> EmbeddingRequest:
    """Validate the fields the gateway knows and measure the input.

    Raises:
        InvalidRequest: naming the first bad parameter.
    """
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    try:
        parsed = EmbeddingBody.model_validate(body)
    except ValidationError as exc:
        raise chat_request.invalid(exc) from None
    models = tuple(dict.fromkeys([m for m in [parsed.model, *(parsed.models or [])] if m]))
    if not models:
        raise errors.InvalidRequest("`model` is required.", param="model")
    entries = _entries(parsed.input)
    bounds, typicals = [], []
    for i, entry in enumerate(entries):
        param = "input" if isinstance(parsed.input, str) or entry is parsed.input else f"input[{i}]"
        if not entry:
            raise errors.InvalidRequest(f"`{param}` must not be empty.", param=param)
        if isinstance(entry, str):
            size = prompt_size.text_bound(entry)
            bounds.append(size + PER_INPUT_TOKENS)
            typicals.append(-(-size // prompt_size.TYPICAL_BYTES_PER_TOKEN))
        else:
            if any(token < 0 for token in entry):
                raise errors.InvalidRequest(f"`{param}` holds a negative token id.", param=param)
            bounds.append(len(entry) + PER_INPUT_TOKENS)
            typicals.append(len(entry))
    forwarded = {k: v for k, v in body.items() if k != "encoding_format"}
    return EmbeddingRequest(
        # The provider is asked for floats, whatever the client wants: the gateway checks
        # the vectors and encodes them itself, exactly as OpenAI does.
        body=forwarded,
        models=models,
        inputs=len(entries),
        base64=parsed.encoding_format == "base64",
        bound=sum(bounds),
        typical=sum(typicals),
        longest_typical=max(typicals),
    )


def _entries(value: str | list[str] | list[int] | list[list[int]]) -> list[str | list[int]]:
    """The inputs, one embedding each.

    Raises:
        InvalidRequest: no input, or more than MAX_INPUTS.
    """
    if isinstance(value, str):
        return [value]
    if not value:
        raise errors.InvalidRequest("`input` must not be empty.", param="input")
    if all(isinstance(v, int) for v in value):
        return [value]  # type: ignore[list-item]  # one token-id array
    if len(value) > MAX_INPUTS:
        raise errors.InvalidRequest(
            f"`input` holds {len(value)} inputs; at most {MAX_INPUTS} per request.",
            param="input",
        )
    return list(value)  # type: ignore[arg-type]
