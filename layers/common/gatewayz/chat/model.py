"""A model as the catalog knows it: what clients call it, its limits, and the offers that
serve it (gatewayz/chat/catalog.py loads them; providers may bring their own)."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING

from gatewayz.record import record

if TYPE_CHECKING:
    from gatewayz.billing.pricing import Offer


@record
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

    @property
    def embeds(self) -> bool:
        """Whether it makes embeddings (`POST /v1/embeddings`), not completions."""
        return "embeddings" in self.output_modalities

    @property
    def draws(self) -> bool:
        """Whether it makes only images (`POST /v1/images/generations`), not text."""
        return "image" in self.output_modalities and "text" not in self.output_modalities
