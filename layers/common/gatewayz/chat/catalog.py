"""The model catalog (docs/architecture.md, step 4): which models this deploy serves, through which
offers, at which prices (`GET /v1/models` lists them: gatewayz/chat/listing.py).

A model is served when at least one of its priced offers is from an available provider
(one with a key; the offline mock when there are none). The catalog is read from the
database once per `CATALOG_TTL_S` per warm process, so pricing costs no round trip on
the request path.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gatewayz.billing.pricing import Offer, Price
from gatewayz.chat.model import Model

if TYPE_CHECKING:
    from gatewayz.chat.providers import Upstream

CATALOG_TTL_S = 60.0
_SERVED_MAX = 16

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


_lock = threading.Lock()
# (loaded at, generation, catalog): the generation keys the served views, so a view of an
# older catalog is never taken for the current one (an object's id() can be reused).
_loaded: tuple[float, int, dict[str, Model]] | None = None
_generation = 0


def models(upstreams: dict[str, Upstream], *, now: float | None = None) -> dict[str, Model]:
    """Every servable model by id, its offers limited to `upstreams` (the available ones)."""
    generation, catalog = _catalog(time.monotonic() if now is None else now)
    key = (generation, tuple(upstreams))
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
    # The served view changes only with the catalog or the available providers (which an
    # account's own provider keys may add to): a few views are kept.
    if len(_served) >= _SERVED_MAX:
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


def _catalog(now: float) -> tuple[int, dict[str, Model]]:
    global _loaded, _generation
    with _lock:
        if _loaded is not None and now - _loaded[0] < CATALOG_TTL_S:
            return _loaded[1], _loaded[2]
    from gatewayz import db

    rows = db.execute(_SQL).fetchall()
    loaded = _build(rows)
    with _lock:
        _generation += 1
        _loaded = (now, _generation, loaded)
        _served.clear()  # views of older catalogs are never asked for again
        return _generation, loaded


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
