"""Image models served by the fake providers, for the images end-to-end tests: added to
the run's catalog for one test module, then removed, so later tests that list models
(`GET /v1/models?output_modalities=image`) see the catalog they expect."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from gatewayz import db
from gatewayz.chat import catalog

if TYPE_CHECKING:
    from collections.abc import Iterator
    from decimal import Decimal


@contextmanager
def image_models(
    ids: tuple[str, ...], offers: tuple[tuple[str, int, str], ...], price: Decimal
) -> Iterator[None]:
    """Models `ids`, each offered as (provider, priority, provider model id) at `price`
    per image, while the block runs."""
    with db.transaction() as cur:
        for model in ids:
            cur.execute(
                """INSERT INTO models (id, name, context_length, output_modalities)
                   VALUES (%s, %s, 4000, '{image}') ON CONFLICT (id) DO NOTHING""",
                (model, f"Test: {model}"),
            )
            for provider, priority, upstream_id in offers:
                cur.execute(
                    """INSERT INTO model_offers (model_id, provider, provider_model_id,
                                                 priority, image_price)
                       VALUES (%s, %s, %s, %s, %s)
                       ON CONFLICT (model_id, provider) DO NOTHING""",
                    (model, provider, upstream_id, priority, price),
                )
    catalog.refresh()
    try:
        yield
    finally:
        db.execute("DELETE FROM models WHERE id = ANY(%s)", (list(ids),))
        catalog.refresh()
