"""`catalog_refresh` (docs/operations.md): the catalog kept current from the model list of
each configured provider (gatewayz/chat/model_lists.py).

Every list is read first; then one transaction changes the catalog, so a list that cannot
be read, or a failure while writing, leaves the catalog exactly as it was. Per provider:

- an entry that matches an offer (by the provider's model id) keeps it active and, when
  the list prices it, sets its prices: the provider's plus `PRICE_MARKUP_PERCENT`,
  rounded up to the nano-dollar, so never below the upstream cost;
- a priced entry the catalog lacks becomes an offer (and a model, under the provider's
  id, whose metadata later lists keep current); an unpriced one is not offered: only
  prices from infra/seed/ or an operator serve it;
- an active offer the list no longer names is retired (kept, inactive, so old usage rows
  still explain themselves) and comes back when the list names it again.

Each price change is kept in `model_price_changes` by a trigger (migration 0021). Two
runs over the same lists change nothing the second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from gatewayz import db
from gatewayz.chat import catalog, model_lists, providers
from gatewayz.config import get_settings
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    import httpx
    import psycopg

    from gatewayz.chat.model_lists import Listed, UpstreamPrice
    from gatewayz.chat.providers import Upstream

# The catalog's model ids (migration 0004); a listed id outside it is not offered.
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9._:-]+$")
_NANO = Decimal("0.000000001")  # the catalog's price scale: numeric(20, 9)
_PRICES = ("input_price", "cached_input_price", "output_price", "reasoning_price")

_OFFERS_SQL = """
SELECT o.id, o.model_id, o.provider_model_id, o.is_active, o.retired_at IS NOT NULL,
       o.input_price, o.cached_input_price, o.output_price, o.reasoning_price,
       o.context_length, o.max_output_tokens, m.listed_by
  FROM model_offers o JOIN models m ON m.id = o.model_id
 WHERE o.provider = %s
 ORDER BY o.model_id
   FOR UPDATE OF o
"""

_NEW_MODEL_SQL = """
INSERT INTO models (id, name, description, context_length, max_output_tokens,
                    input_modalities, output_modalities, supported_parameters, listed_by,
                    created_at)
VALUES (%(id)s, %(name)s, %(description)s, %(context_length)s, %(max_output_tokens)s,
        %(input_modalities)s, %(output_modalities)s, %(supported_parameters)s, %(listed_by)s,
        coalesce(to_timestamp(%(created)s), now()))
ON CONFLICT (id) DO NOTHING
RETURNING id
"""

_NEW_OFFER_SQL = """
INSERT INTO model_offers (model_id, provider, provider_model_id, input_price,
                          cached_input_price, output_price, reasoning_price, context_length,
                          max_output_tokens, request_fees)
VALUES (%(model_id)s, %(provider)s, %(provider_model_id)s, %(input_price)s,
        %(cached_input_price)s, %(output_price)s, %(reasoning_price)s, %(context_length)s,
        %(max_output_tokens)s, %(request_fees)s)
ON CONFLICT (model_id, provider) DO NOTHING
RETURNING id
"""

_MODEL_METADATA_SQL = """
UPDATE models SET name = %(name)s, description = %(description)s,
       context_length = %(context_length)s, max_output_tokens = %(max_output_tokens)s,
       input_modalities = %(input_modalities)s, output_modalities = %(output_modalities)s,
       supported_parameters = %(supported_parameters)s, updated_at = now()
 WHERE id = %(id)s AND listed_by = %(listed_by)s
   AND (name, description, context_length, max_output_tokens, input_modalities,
        output_modalities, supported_parameters)
       IS DISTINCT FROM
       (%(name)s, %(description)s, %(context_length)s, %(max_output_tokens)s,
        %(input_modalities)s::text[], %(output_modalities)s::text[],
        %(supported_parameters)s::text[])
"""


@dataclass
class Report:
    """What one refresh did, by count (the job's report)."""

    providers: int = 0
    listed: int = 0
    models_added: int = 0
    offers_added: int = 0
    prices_changed: int = 0
    offers_retired: int = 0
    offers_restored: int = 0
    unpriced: int = 0  # listed without a usable price and not in the catalog: not offered
    skipped: int = 0  # priced, but without a usable id or context length
    provider_names: list[str] = field(default_factory=list)


def marked_up(price: Decimal, percent: Decimal) -> Decimal:
    """`price` plus `percent` percent, rounded up to the nano-dollar: never below `price`."""
    with localcontext() as exact:
        exact.prec = 60  # wide enough that only the final rounding rounds
        return (price * (100 + percent) / 100).quantize(_NANO, rounding=ROUND_CEILING)


def refresh(
    upstreams: dict[str, Upstream] | None = None,
    *,
    markup_percent: Decimal | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Refresh the catalog from `upstreams` (default: every provider with a key; never the
    offline mock) and return the report. A list that cannot be read changes nothing and
    gives `status: failed` naming the provider."""
    settings = get_settings()
    if upstreams is None:
        upstreams = {
            name: upstream
            for name, upstream in providers.available(settings).items()
            if upstream.provider.serve_locally() is None and not upstream.own_key
        }
    percent = settings.price_markup_percent if markup_percent is None else markup_percent
    lists: dict[str, list[Listed]] = {}
    for name, upstream in sorted(upstreams.items()):
        try:
            lists[name] = model_lists.fetch(upstream, client)
        except model_lists.ListUnavailable as exc:
            get_logger().error("model list unavailable", extra={"error": str(exc)})
            return {"status": "failed", "provider": name, "error": str(exc)}
    report = Report(providers=len(lists), provider_names=sorted(lists))
    with db.transaction() as cur:
        # Overlapping runs take turns, so each sees the other's result.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('gatewayz.catalog_refresh'))")
        cur.execute("SELECT set_config('gatewayz.price_source', 'catalog_refresh', true)")
        for name, listed in lists.items():
            _refresh_provider(cur, name, listed, percent, report)
    catalog.refresh()  # this process sees the change now; others within CATALOG_TTL_S
    return {**report.__dict__, "markup_percent": str(percent)}


def _refresh_provider(
    cur: psycopg.Cursor[Any], provider: str, listed: list[Listed], percent: Decimal, report: Report
) -> None:
    report.listed += len(listed)
    offers: dict[str, list[tuple[Any, ...]]] = {}
    for row in cur.execute(_OFFERS_SQL, (provider,)).fetchall():
        offers.setdefault(row[2], []).append(row)
    for entry in listed:
        if entry.id in offers:
            for offer in offers[entry.id]:
                _update_offer(cur, offer, entry, provider, percent, report)
        elif entry.price is not None:
            _add_offer(cur, entry, provider, percent, report)
        else:
            report.unpriced += 1
    names = {entry.id for entry in listed}
    retire = [row[0] for rows in offers.values() for row in rows if row[3] and row[2] not in names]
    if retire:
        cur.execute(
            "UPDATE model_offers SET is_active = false, retired_at = now(), updated_at = now()"
            " WHERE id = ANY(%s)",
            (retire,),
        )
        report.offers_retired += len(retire)


def _prices(price: UpstreamPrice, percent: Decimal) -> dict[str, Decimal | None]:
    def up(value: Decimal | None) -> Decimal | None:
        return None if value is None else marked_up(value, percent)

    return {
        "input_price": up(price.input),
        "cached_input_price": up(price.cached_input),
        "output_price": up(price.output),
        "reasoning_price": up(price.reasoning),
    }


def _fees(price: UpstreamPrice, percent: Decimal) -> dict[str, str]:
    return {name: str(marked_up(usd, percent)) for name, usd in price.fees}


def _update_offer(
    cur: psycopg.Cursor[Any],
    offer: tuple[Any, ...],
    entry: Listed,
    provider: str,
    percent: Decimal,
    report: Report,
) -> None:
    offer_id, model_id, _, active, retired, *current, context, max_out, listed_by = offer
    changes: dict[str, Any] = {}
    if not active and retired:
        changes |= {"is_active": True, "retired_at": None}
        report.offers_restored += 1
    if entry.price is not None:
        prices = _prices(entry.price, percent)
        if any(prices[name] != old for name, old in zip(_PRICES, current, strict=True)):
            changes |= prices
            report.prices_changed += 1
        if entry.context_length is not None and entry.context_length != context:
            changes["context_length"] = entry.context_length
        if entry.max_output_tokens != max_out:
            changes["max_output_tokens"] = entry.max_output_tokens
    if changes:
        assignments = ", ".join(f"{column} = %({column})s" for column in changes)
        cur.execute(
            f"UPDATE model_offers SET {assignments}, updated_at = now() WHERE id = %(id)s",
            {**changes, "id": offer_id},
        )
    if entry.price is not None and entry.price.fees:
        cur.execute(
            "UPDATE model_offers SET request_fees = request_fees || %s"
            " WHERE id = %s AND NOT request_fees @> %s",
            (Jsonb(_fees(entry.price, percent)), offer_id, Jsonb(_fees(entry.price, percent))),
        )
    if listed_by == provider and entry.context_length is not None:
        cur.execute(_MODEL_METADATA_SQL, _model_row(model_id, entry, provider))


def _add_offer(
    cur: psycopg.Cursor[Any], entry: Listed, provider: str, percent: Decimal, report: Report
) -> None:
    assert entry.price is not None
    if not MODEL_ID.fullmatch(entry.id) or entry.context_length is None:
        report.skipped += 1
        return
    if cur.execute(_NEW_MODEL_SQL, _model_row(entry.id, entry, provider)).fetchone():
        report.models_added += 1
    row = {
        "model_id": entry.id,
        "provider": provider,
        "provider_model_id": entry.id,
        "context_length": entry.context_length,
        "max_output_tokens": entry.max_output_tokens,
        "request_fees": Jsonb(_fees(entry.price, percent)),
        **_prices(entry.price, percent),
    }
    if cur.execute(_NEW_OFFER_SQL, row).fetchone():
        report.offers_added += 1
    else:
        # The model already has an offer from this provider under another of its ids
        # (a curated mapping from infra/seed/): that one stays.
        report.skipped += 1


def _model_row(model_id: str, entry: Listed, provider: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": entry.name,
        "description": entry.description,
        "context_length": entry.context_length,
        "max_output_tokens": entry.max_output_tokens,
        "input_modalities": list(entry.input_modalities),
        "output_modalities": list(entry.output_modalities),
        "supported_parameters": list(entry.supported_parameters),
        "listed_by": provider,
        "created": entry.created,
    }
