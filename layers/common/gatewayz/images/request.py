"""An image generation request (docs/api.md, images): OpenAI's body, validated field by
field against the model's rule (gatewayz/images/rules.py).

Only the fields validated here go upstream, with their JSON types: an unknown field
might be a fee-bearing feature the catalog does not price. `response_format` is ours
(the gateway stores the image or encodes it), so providers are never asked for one;
some (gpt-image-1) refuse it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatewayz import errors
from gatewayz.record import record

if TYPE_CHECKING:
    from gatewayz.images.rules import Rule

RESPONSE_FORMATS = ("url", "b64_json")
_KNOWN = frozenset(
    {"model", "prompt", "n", "size", "quality", "style", "response_format", "user", "provider"}
)
_USER_MAX = 256


class ImageBody(BaseModel):
    """OpenAI's image generation request plus OpenRouter's `provider` (the OpenAPI
    document's description; `parse` validates against the model's rule)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    model: str = Field(min_length=1, examples=["mock/image"])
    prompt: str = Field(min_length=1)
    n: int | None = Field(default=1, ge=1, le=10, description="at most the model's limit")
    size: str | None = Field(default=None, examples=["1024x1024"])
    quality: str | None = Field(default=None, examples=["standard", "hd"])
    style: str | None = Field(default=None, examples=["vivid", "natural"])
    response_format: Literal["url", "b64_json"] | None = "url"
    user: str | None = None
    provider: dict[str, Any] | None = None


@record
class ImageRequest:
    """The validated request: what to ask the provider for, and how to answer."""

    model: str
    prompt: str
    n: int
    size: str
    quality: str
    style: str | None
    response_format: str
    user: str | None
    provider: object  # OpenRouter-style routing preferences, parsed by routing

    @property
    def prompt_tokens(self) -> int:
        """A typical token count of the prompt (four bytes a token): the rate limiter's
        estimate, recorded with the usage (it is not billed: images are)."""
        return -(-len(self.prompt.encode()) // 4)

    def upstream_body(self) -> dict[str, Any]:
        """The body every provider gets (its model id is set by the provider hook)."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "n": self.n,
            "size": self.size,
            "quality": self.quality,
        }
        if self.style is not None:
            body["style"] = self.style
        if self.user is not None:
            body["user"] = self.user
        return body


def model_of(body: dict[str, Any]) -> str:
    """The `model` of a request body, read before its rule is known.

    Raises:
        InvalidRequest: no `model` string.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.InvalidRequest("`model` is required: an image model's id.", param="model")
    return model


def parse(body: dict[str, Any], rule: Rule) -> ImageRequest:
    """The request, checked against `rule`.

    Raises:
        InvalidRequest: a field is missing, of the wrong type or out of range (`param`
            names it).
    """
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise errors.InvalidRequest(
            f"Unknown parameter: `{errors.quote(unknown[0])}`.", param=unknown[0]
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise errors.InvalidRequest("`prompt` must be a non-empty string.", param="prompt")
    if len(prompt) > rule.max_prompt_chars:
        raise errors.InvalidRequest(
            f"`prompt` is too long: at most {rule.max_prompt_chars} characters for this model.",
            param="prompt",
        )
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= rule.max_n:
        raise errors.InvalidRequest(
            f"`n` must be an integer from 1 to {rule.max_n} for this model.", param="n"
        )
    return ImageRequest(
        model=str(body["model"]),
        prompt=prompt,
        n=n,
        size=_choice(body, "size", rule.sizes),
        quality=_choice(body, "quality", rule.qualities),
        style=_choice(body, "style", rule.styles) if body.get("style") is not None else None,
        response_format=_choice(body, "response_format", RESPONSE_FORMATS),
        user=_user(body.get("user")),
        provider=body.get("provider"),
    )


def _choice(body: dict[str, Any], field: str, allowed: tuple[str, ...]) -> str:
    """`body[field]`, one of `allowed` (the first when absent or null)."""
    value = body.get(field)
    if value is None and allowed:
        return allowed[0]
    if value not in allowed:
        accepted = ", ".join(allowed) if allowed else "none (this model takes no style)"
        raise errors.InvalidRequest(
            f"Invalid `{field}`: `{errors.quote(str(value))}`. Accepted for this model: "
            f"{accepted}.",
            param=field,
        )
    return str(value)


def _user(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _USER_MAX:
        raise errors.InvalidRequest(
            f"`user` must be a string of at most {_USER_MAX} characters.", param="user"
        )
    return value
