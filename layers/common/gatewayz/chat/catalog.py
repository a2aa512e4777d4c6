"""The model catalog (docs/architecture.md, step 4): which models this deploy serves, through which
offers, at which prices (`GET /v1/models` lists them: gatewayz/chat/listing.py).

A model is served when at least one of its priced offers is from an available provider
(one with a key; the offline mock when there are none). The catalog is read from the
database once per `CATALOG_TTL_S` per warm process, so pricing costs no round trip on
the request path. The first read (the function's INIT phase) blocks; later ones run on a
worker thread of their own, started by the first request to find the catalog older
than that, while it and the requests after it are priced with the catalog they found:
a reload is never a round trip (and a catalog's worth of objects built) on a request's
path, and a database that cannot be read keeps the last catalog served. Only a copy
older than `STALE_MAX_S` (a function frozen that long between requests) is read again
before the request goes on, so no price is older than that.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gatewayz.billing.pricing import Offer, Price
from gatewayz.chat.model import Model

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from gatewayz.chat.providers import Upstream

CATALOG_TTL_S = 60.0
RETRY_S = 5.0  # after a reload failed, the next is tried this much later
STALE_MAX_S = 600.0
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
    """Forget the cached catalog (after it changed in this process; tests): the next
    request reads it again, and a reload in flight, which may have read it before the
    change, is dropped."""
    global _loaded, _generation
    with _lock:
        _loaded = None
        _generation += 1
        _served.clear()


def reloaded(timeout_s: float = 30.0) -> None:
    """Wait for a reload in flight to end (tests, tools)."""
    if _reloading is not None:
        _reloading.exception(timeout_s)


def _catalog(now: float) -> tuple[int, dict[str, Model]]:
    global _reloading
    with _lock:
        current = _loaded
        if current is not None and now - current[0] < STALE_MAX_S:
            if now - current[0] >= CATALOG_TTL_S and (_reloading is None or _reloading.done()):
                _reloading = _worker().submit(_reload, now, current[1])
            return current[1], current[2]
        generation = _generation
    return _load(now, generation)


def _load(now: float, generation: int) -> tuple[int, dict[str, Model]]:
    """Read and build the catalog; keep it unless `refresh` came meanwhile."""
    global _loaded, _generation
    from gatewayz import db

    loaded = _build(db.execute(_SQL).fetchall())
    with _lock:
        if _generation != generation:  # refreshed meanwhile: what was read may be older
            return generation, loaded
        _generation += 1
        _loaded = (now, _generation, loaded)
        _served.clear()  # views of older catalogs are never asked for again
        return _generation, loaded


def _reload(now: float, generation: int) -> None:
    """`_load` on the worker thread, on a connection of its own, closed after; on a
    failure the catalog in use is kept, and tried again after RETRY_S."""
    global _loaded
    from gatewayz import db

    try:
        _load(now, generation)
    except Exception:  # noqa: BLE001 - logged; the catalog in use stays
        from gatewayz.logs import get_logger

        get_logger().exception("reloading the model catalog failed; the one in use stays")
        with _lock:
            if _loaded is not None and _loaded[1] == generation:
                _loaded = (now - CATALOG_TTL_S + RETRY_S, *_loaded[1:])
    finally:
        db.close()


def _worker() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor

        _executor = ThreadPoolExecutor(1, thread_name_prefix="gatewayz-catalog")
    return _executor


_executor: ThreadPoolExecutor | None = None
_reloading: Future[None] | None = None


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
