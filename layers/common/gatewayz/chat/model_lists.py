"""A provider's model list (docs/operations.md, `catalog_refresh`): `GET {base}/models`,
OpenAI's list shape, read into `Listed` entries.

OpenRouter's entries carry prices (USD per token, as strings), context length, modalities,
supported parameters and the top provider's output cap; other providers list ids only.
A price we cannot charge for exactly (a per-request charge, a negative or unreadable
number) leaves the entry unpriced, so it is offered only at a price the catalog already
holds: never free, never below cost by accident.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from gatewayz.record import record

if TYPE_CHECKING:
    import httpx

    from gatewayz.chat.providers import Upstream

TIMEOUT_S = 30.0
_MILLION = Decimal(1_000_000)
_NAME_MAX, _DESCRIPTION_MAX = 200, 4000


class ListUnavailable(Exception):
    """The provider's model list could not be read (network, status, or not a list)."""


@record
class UpstreamPrice:
    """What the provider charges: USD per million tokens (per request for fees)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None  # None: charged as input
    reasoning: Decimal | None = None  # None: charged as output
    fees: tuple[tuple[str, Decimal], ...] = ()  # ("web_search", USD per request)


@record
class Listed:
    """One entry of a provider's model list."""

    id: str  # the provider's own model id
    name: str
    description: str = ""
    created: int | None = None  # unix seconds
    context_length: int | None = None
    max_output_tokens: int | None = None
    input_modalities: tuple[str, ...] = ("text",)
    output_modalities: tuple[str, ...] = ("text",)
    supported_parameters: tuple[str, ...] = ()
    price: UpstreamPrice | None = None  # None: the list gives no price we can use


def fetch(upstream: Upstream, client: httpx.Client | None = None) -> list[Listed]:
    """Read `upstream`'s model list.

    Raises:
        ListUnavailable: no answer, a status other than 200, a body without a `data`
            list, or a list naming no model.
    """
    import httpx

    url = f"{upstream.base_url}/models"
    headers = upstream.provider.headers(upstream.api_key)
    try:
        if client is None:
            with httpx.Client(timeout=TIMEOUT_S) as own:
                response = own.get(url, headers=headers)
        else:
            response = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ListUnavailable(f"{upstream.name}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise ListUnavailable(f"{upstream.name}: status {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise ListUnavailable(f"{upstream.name}: the answer is not JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ListUnavailable(f"{upstream.name}: the answer has no `data` list")
    listed = parse(data)
    if not listed:
        # A provider serves something: an empty list is a glitch, and taking it at its
        # word would retire every offer of the provider.
        raise ListUnavailable(f"{upstream.name}: the list names no model")
    return listed


def parse(data: list[Any]) -> list[Listed]:
    """The usable entries of a list's `data`; an entry without a string id is skipped, and
    of two entries with one id the first counts."""
    listed: dict[str, Listed] = {}
    for entry in data:
        if not isinstance(entry, dict):
            continue
        model_id = entry.get("id")
        if isinstance(model_id, str) and model_id.strip() and model_id not in listed:
            listed[model_id] = _entry(model_id, entry)
    return list(listed.values())


def _entry(model_id: str, entry: dict[str, Any]) -> Listed:
    architecture = _dict(entry.get("architecture"))
    top = _dict(entry.get("top_provider"))
    return Listed(
        id=model_id,
        name=_text(entry.get("name"), _NAME_MAX) or model_id,
        description=_text(entry.get("description"), _DESCRIPTION_MAX),
        created=_count(entry.get("created")),
        context_length=_count(top.get("context_length")) or _count(entry.get("context_length")),
        max_output_tokens=_count(top.get("max_completion_tokens")),
        input_modalities=_names(architecture.get("input_modalities")) or ("text",),
        output_modalities=_names(architecture.get("output_modalities")) or ("text",),
        supported_parameters=_names(entry.get("supported_parameters")),
        price=_price(entry.get("pricing")),
    )


def _price(pricing: object) -> UpstreamPrice | None:
    """OpenRouter's `pricing` (USD per token) as USD per million tokens; None when it has
    no usable prompt and completion price, or a charge we cannot pass on."""
    if not isinstance(pricing, dict):
        return None
    per_token = {name: _usd(value) for name, value in pricing.items()}
    if any(value is None for value in per_token.values()):
        return None  # an unreadable or negative ("-1": varies by request) price
    prompt, completion = per_token.get("prompt"), per_token.get("completion")
    if prompt is None or completion is None or per_token.get("request"):
        return None  # a fee on every request: our prices are per token
    reasoning = per_token.get("internal_reasoning")
    cached = per_token.get("input_cache_read")
    web_search = per_token.get("web_search")
    return UpstreamPrice(
        input=prompt * _MILLION,
        output=completion * _MILLION,
        cached_input=None if cached is None else cached * _MILLION,
        # "0" means reasoning tokens are billed as completion tokens: charge them as output.
        reasoning=reasoning * _MILLION if reasoning else None,
        fees=(("web_search", web_search),) if web_search else (),
    )


def _usd(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
        return value
    return None


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = (v.strip() for v in value if isinstance(v, str))
    return tuple(dict.fromkeys(n[:64] for n in names if n))


def _text(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
