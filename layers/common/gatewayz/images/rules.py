"""What each image model accepts and how its price scales (docs/api.md, images).

The catalog prices an image offer per image (`model_offers.image_price`), for the model's
first size at its first quality. Providers charge more for larger or finer images
(OpenAI's DALL-E 3: $0.04 standard 1024x1024, $0.08 for a wide or HD one, $0.12 both), so
a rule gives each (quality, size) a factor of that price. A model without a rule here
accepts only the conservative default: one 1024x1024 image at the catalog price, never
a size whose price nobody wrote down.
"""

from __future__ import annotations

from decimal import Decimal

from gatewayz.record import record


@record
class Rule:
    """One model's accepted values; the first size and quality are the defaults."""

    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    styles: tuple[str, ...] = ()  # empty: the model takes no `style`
    max_n: int = 1
    max_prompt_chars: int = 4000
    # (quality, size) -> multiple of the catalog's per-image price; missing: 1.
    factors: tuple[tuple[tuple[str, str], Decimal], ...] = ()

    def factor(self, quality: str, size: str) -> Decimal:
        """What one image of this quality and size costs, in catalog prices."""
        return dict(self.factors).get((quality, size), Decimal(1))


_WIDE = ("1792x1024", "1024x1792")

RULES: dict[str, Rule] = {
    "openai/dall-e-2": Rule(
        sizes=("1024x1024", "512x512", "256x256"),
        qualities=("standard",),
        max_n=10,
        max_prompt_chars=1000,
        # $0.020 at 1024x1024, $0.018 at 512x512, $0.016 at 256x256.
        factors=(
            (("standard", "512x512"), Decimal("0.9")),
            (("standard", "256x256"), Decimal("0.8")),
        ),
    ),
    "openai/dall-e-3": Rule(
        sizes=("1024x1024", *_WIDE),
        qualities=("standard", "hd"),
        styles=("vivid", "natural"),
        max_n=1,
        max_prompt_chars=4000,
        factors=(
            *((("standard", size), Decimal(2)) for size in _WIDE),
            (("hd", "1024x1024"), Decimal(2)),
            *((("hd", size), Decimal(3)) for size in _WIDE),
        ),
    ),
    "mock/image": Rule(
        sizes=("256x256", "512x512", "1024x1024"),
        qualities=("standard", "hd"),
        styles=("vivid", "natural"),
        max_n=4,
        max_prompt_chars=4000,
    ),
}
DEFAULT = Rule(sizes=("1024x1024",), qualities=("standard",), max_n=1)


def rule(model_id: str) -> Rule:
    """The rule of catalog model `model_id` (the default when it has none)."""
    return RULES.get(model_id, DEFAULT)
