"""The model catalog (DESIGN §3 step 4): which models this deploy serves, through which
offers, at which prices; and their OpenRouter-style listing for `GET /v1/models`.

A model is served when at least one of its priced offers is from an available provider
(one with a key; the offline mock when there are none). The catalog is read from the
database once per `CATALOG_TTL_S` per warm process, so pricing costs no round trip on
the request path.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gatewayz.billing.pricing import Offer, Price

if TYPE_CHECKING:
    from gatewayz.chat.providers import Upstream

CATALOG_TTL_S = 60.0

_SQL = """
SELECT m.id, m.name, m.description, m.context_length, m.max_output_tokens,
       m.input_modalities, m.output_modalities, m.supported_parameters,
       extract(epoch FROM m.created_at)::bigint,
       o.provider, o.provider_model_id, o.priority, o.input_price, o.output_price,
       o.cached_input_price, o.reasoning_price, o.image_price, o.context_length,
       o.max_output_tokens, m.max_image_tokens, o.request_fees
  FROM models m JOIN model_offers o ON o.model_id = m.id
 WHERE m.is_active AND o.is_active
 ORDER BY m.id, o.priority, o.provider
"""


@dataclass(frozen=True, slots=True)
class Model:
    """A model as clients see it, with its offers in priority order."""

    id: str
    name: str
    context_length: int
    max_output_tokens: int | None = None
    description: str = ""
    input_modalities: tuple[str, ...] = ("text",)
    output_modalities: tuple[str, ...] = ("text",)
    supported_parameters: tuple[str, ...] = ()
    created: int = 0
    max_image_tokens: int | None = None  # per input image; None: the gateway's default bound
    offers: tuple[Offer, ...] = field(default=())


_lock = threading.Lock()
_loaded: tuple[float, dict[str, Model]] | None = None


def models(upstreams: dict[str, Upstream], *, now: float | None = None) -> dict[str, Model]:
    """Every servable model by id, its offers limited to `upstreams` (the available ones)."""
    catalog = _catalog(time.monotonic() if now is None else now)
    key = (id(catalog), tuple(upstreams))
    cached = _served.get(key)
    if cached is not None:
        return cached
    for upstream in upstreams.values():
        for model in upstream.provider.builtin_models():
            catalog = {**catalog, model.id: model}
    served = {}
    for model_id, model in catalog.items():
        offers = tuple(o for o in model.offers if o.provider in upstreams)
        if offers:
            served[model_id] = Model(**{**_fields(model), "offers": offers})
    # The served view changes only with the catalog or the configured providers.
    _served.clear()
    _served[key] = served
    return served


_served: dict[tuple[int, tuple[str, ...]], dict[str, Model]] = {}


def refresh() -> None:
    """Forget the cached catalog (after it changed in this process; tests)."""
    global _loaded
    with _lock:
        _loaded = None
        _served.clear()


def _catalog(now: float) -> dict[str, Model]:
    global _loaded
    with _lock:
        if _loaded is not None and now - _loaded[0] < CATALOG_TTL_S:
            return _loaded[1]
    from gatewayz import db

    rows = db.execute(_SQL).fetchall()
    loaded = _build(rows)
    with _lock:
        _loaded = (now, loaded)
    return loaded


def _build(rows: list[tuple[Any, ...]]) -> dict[str, Model]:
    built: dict[str, Model] = {}
    offers: dict[str, list[Offer]] = {}
    for row in rows:
        (model_id, name, description, context, max_out, inputs, outputs, params, created,
         provider, provider_model, priority, p_in, p_out, p_cached, p_reason, p_image,
         offer_context, offer_max_out, max_image_tokens, fees) = row  # fmt: skip
        if model_id not in built:
            built[model_id] = Model(
                id=model_id,
                name=name,
                description=description,
                context_length=context,
                max_output_tokens=max_out,
                input_modalities=tuple(inputs),
                output_modalities=tuple(outputs),
                supported_parameters=tuple(params),
                created=int(created),
                max_image_tokens=max_image_tokens,
            )
        offers.setdefault(model_id, []).append(
            Offer(
                model_id=model_id,
                provider=provider,
                provider_model_id=provider_model,
                priority=priority,
                price=Price(
                    p_in,
                    p_out,
                    cached_input=p_cached,
                    reasoning=p_reason,
                    image=p_image,
                    fees=_fees(fees),
                ),
                context_length=offer_context,
                max_output_tokens=offer_max_out,
            )
        )
    return {
        model_id: Model(**{**_fields(model), "offers": tuple(offers[model_id])})
        for model_id, model in built.items()
    }


def _fees(fees: dict[str, Any]) -> tuple[tuple[str, Decimal], ...]:
    """`request_fees` as (feature, USD per request); an unreadable price is left out, so
    the feature stays refused rather than free."""
    priced = []
    for feature, usd in sorted(fees.items()):
        try:
            price = Decimal(str(usd))
        except ArithmeticError:
            continue
        if price.is_finite() and price >= 0:
            priced.append((feature, price))
    return tuple(priced)


def _fields(model: Model) -> dict[str, Any]:
    return {name: getattr(model, name) for name in Model.__dataclass_fields__}


def listing(model: Model) -> dict[str, Any]:
    """The `GET /v1/models` entry: OpenAI's fields plus OpenRouter's metadata. Prices are
    USD per token (per image), as strings, from the first offer (the one tried first)."""
    first = model.offers[0]
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.id.split("/", 1)[0],
        "name": model.name,
        "description": model.description,
        "context_length": model.context_length,
        "architecture": {
            "input_modalities": list(model.input_modalities),
            "output_modalities": list(model.output_modalities),
        },
        "pricing": _pricing(first.price),
        "top_provider": {
            "context_length": first.context_length or model.context_length,
            "max_completion_tokens": first.max_output_tokens or model.max_output_tokens,
        },
        "supported_parameters": list(model.supported_parameters),
        "providers": [
            {
                "name": offer.provider,
                "context_length": offer.context_length or model.context_length,
                "max_completion_tokens": offer.max_output_tokens or model.max_output_tokens,
                "pricing": _pricing(offer.price),
            }
            for offer in model.offers
        ],
    }


def _pricing(price: Price) -> dict[str, str]:
    per_token = {
        "prompt": price.input,
        "completion": price.output,
        "input_cache_read": price.cached_input,
        "internal_reasoning": price.reasoning,
    }
    shown = {name: _per_token(value) for name, value in per_token.items() if value is not None}
    if price.image is not None:
        shown["image"] = _plain(price.image)
    return shown


def _per_token(per_million: Decimal) -> str:
    return _plain(per_million / 1_000_000)


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: "0.00000015", "0"."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def list_served() -> dict[str, Any]:
    """`GET /v1/models`: every model this deploy serves, OpenAI's list shape."""
    from gatewayz.chat import providers
    from gatewayz.config import get_settings

    served = models(providers.available(get_settings()))
    return {"object": "list", "data": [listing(m) for _, m in sorted(served.items())]}


def describe(model_id: str) -> dict[str, Any]:
    """`GET /v1/models/{id}`.

    Raises:
        ModelNotFound: no such model is served here.
    """
    from gatewayz import errors
    from gatewayz.chat import providers
    from gatewayz.config import get_settings

    model = models(providers.available(get_settings())).get(model_id)
    if model is None:
        raise errors.ModelNotFound(f"The model `{model_id}` does not exist.", param="model")
    return listing(model)
