"""A completion request as the gateway reads it (docs/architecture.md).

Every OpenAI (and OpenRouter) request field the gateway knows is checked for its JSON
type, strictly: `"5"`, `5.0` or `true` is not an integer, `"true"` or `1` is not a
boolean. A wrong type is a 400 naming the field, never coerced, so what goes upstream is
what was validated (an upstream that ignored a mistyped field would generate its full
default length). Unknown fields pass through untouched. Besides the body to forward, the
gateway keeps what it needs: the models to try, whether to stream, the output the client
asked for, how many outputs the provider may generate, the prompt's size and the
fee-bearing features asked for.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatewayz import errors
from gatewayz.chat import fees, prompt_size
from gatewayz.record import record

MAX_N = 16
MAX_BEST_OF = 20
MAX_OUTPUTS = 128  # prompts x choices a single request may generate
MAX_OUTPUT_TOKENS = 2**31 - 1
CAP_FIELDS = ("max_completion_tokens", "max_tokens")
HISTORY_FIELDS = ("session_id", "history")  # chat history's (docs/api.md), not upstream's
OutputTokens = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class StreamOptions(_Strict):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ContentPart(_Strict):
    type: str


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    function_call: dict[str, Any] | None = None
    refusal: str | None = None


class Reasoning(_Strict):
    effort: str | None = None
    max_tokens: int | None = Field(default=None, ge=0, le=MAX_OUTPUT_TOKENS)
    exclude: bool | None = None
    enabled: bool | None = None


class Tool(_Strict):
    type: str
    function: dict[str, Any] | None = None


class _Common(_Strict):
    model: str | None = Field(default=None, min_length=1)
    models: list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = OutputTokens
    n: int | None = Field(default=None, ge=1, le=MAX_N)
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    provider: dict[str, Any] | None = None
    plugins: list[Any] | None = None
    transforms: list[str] | None = None
    route: str | None = None


class ChatBody(_Common):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = OutputTokens
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    reasoning: Reasoning | None = None
    verbosity: str | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    store: bool | None = None


class CompletionBody(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]
    best_of: int | None = Field(default=None, ge=1, le=MAX_BEST_OF)
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)


@record
class CompletionRequest:
    """What the gateway needs to know about a request, besides the body it forwards."""

    body: dict[str, Any]
    chat: bool
    models: tuple[str, ...]  # `model` first, then the `models` fallbacks
    stream: bool
    include_usage: bool
    max_output_tokens: int | None  # per output, as the client asked; None: the model's
    outputs: int  # completions the provider may generate: prompts x max(n, best_of)
    prompt: prompt_size.PromptSize
    extra_output_tokens: int  # billed as output beyond the cap (rejected predictions)
    features: dict[str, str]  # fee-bearing features asked for -> the field asking
    # The field that set `max_output_tokens` (`max_completion_tokens` or `max_tokens`).
    max_output_param: str | None = None
    # `session_id` and `history` as sent (gatewayz/history/injection.py reads them): the
    # gateway's own fields, never forwarded.
    history: dict[str, Any] | None = None

    @property
    def model(self) -> str:
        return self.models[0]


def parse(body: object, *, chat: bool) -> CompletionRequest:
    """Validate the fields the gateway knows.

    Raises:
        InvalidRequest: naming the first bad parameter.
    """
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    # A field sent as `null` means absent, as OpenAI treats it; what goes upstream is the
    # body without it (some providers refuse a `null` where OpenAI takes one).
    nulls = [k for k, v in body.items() if v is None]
    body = {k: v for k, v in body.items() if v is not None}
    history = {k: body.pop(k) for k in HISTORY_FIELDS if k in body} or None
    if not chat and "prompt" in nulls:
        body["prompt"] = ""  # required but nullable: null is OpenAI's default, an empty prompt
    try:
        parsed = (ChatBody if chat else CompletionBody).model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    models = tuple(dict.fromkeys([m for m in [parsed.model, *(parsed.models or [])] if m]))
    if not models:
        raise errors.InvalidRequest("`model` is required.", param="model")
    if isinstance(parsed, ChatBody):
        size = prompt_size.of_chat(body)
        asked = parsed.max_completion_tokens or parsed.max_tokens
        asked_by = "max_completion_tokens" if parsed.max_completion_tokens else "max_tokens"
        per_prompt = parsed.n or 1
        # Rejected predicted tokens are billed as output, beyond the cap: at most all of them.
        extra = prompt_size.text_bound(parsed.prediction)
    else:
        assert isinstance(parsed, CompletionBody)
        size = prompt_size.of_completion(parsed.prompt)
        asked = parsed.max_tokens
        asked_by = "max_tokens"
        per_prompt = max(parsed.n or 1, parsed.best_of or 1)
        extra = 0
    outputs = size.prompts * per_prompt
    if outputs > MAX_OUTPUTS:
        raise errors.InvalidRequest(
            f"This request would generate {outputs} completions; at most {MAX_OUTPUTS}.",
            param="prompt" if size.prompts > 1 else "n",
        )
    return CompletionRequest(
        body=body,
        chat=chat,
        models=models,
        stream=bool(parsed.stream),
        include_usage=bool(parsed.stream_options and parsed.stream_options.include_usage),
        max_output_tokens=asked,
        outputs=outputs,
        prompt=size,
        extra_output_tokens=extra,
        features=fees.requested(body),
        max_output_param=asked_by if asked is not None else None,
        history=history,
    )


def _invalid(exc: ValidationError) -> errors.InvalidRequest:
    """The most specific problem as a 400: `Invalid value for `messages[0].content``."""
    problems = [(_param(p["loc"]), p) for p in exc.errors()]
    param, problem = max(problems, key=lambda item: len(item[0]))
    if problem["type"] == "missing":
        return errors.InvalidRequest(f"`{errors.quote(param)}` is required.", param=param or None)
    return errors.InvalidRequest(
        f"Invalid value for `{errors.quote(param)}`: {problem['msg']}.", param=param or None
    )


def _param(loc: tuple[int | str, ...]) -> str:
    """`messages[0].content` from pydantic's location, without the union member tags it
    adds (`str`, `list[ContentPart]`): our fields are lower-case names or indexes."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier() and part.islower() and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
    return out


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none"})


def invalid(exc: ValidationError) -> errors.InvalidRequest:
    """The 400 for a body pydantic refused (the embeddings request reads its body alike)."""
    return _invalid(exc)
