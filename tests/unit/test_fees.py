"""Fee-bearing upstream features are priced or refused (gatewayz/chat/fees.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayz import errors
from gatewayz.billing.pricing import Offer, Price
from gatewayz.chat import fees
from gatewayz.chat.model import Model
from gatewayz.chat.providers import REGISTRY, Upstream
from gatewayz.chat.routing import Attempt

SEARCH = (("web_search", Decimal("0.02")),)


def attempt(provider: str, price: Price) -> Attempt:
    model = Model(id="test/m", name="m", context_length=1000)
    offer = Offer("test/m", provider, f"{provider}/m", 10, price)
    return Attempt(model, offer, Upstream(REGISTRY[provider], "http://x.test", "k"))


PLAIN = attempt("openrouter", Price(Decimal(1), Decimal(2)))
PRICED = attempt("portkey", Price(Decimal(1), Decimal(2), fees=SEARCH))


def test_without_features_every_attempt_stays() -> None:
    assert fees.priced_attempts([PLAIN, PRICED], {}) == [PLAIN, PRICED]


def test_only_offers_that_price_every_feature_serve() -> None:
    assert fees.priced_attempts([PLAIN, PRICED], {"web_search": "plugins[0]"}) == [PRICED]


def test_an_unpriced_feature_is_a_400_naming_the_field() -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        fees.priced_attempts(
            [PLAIN, PRICED], {"web_search": "plugins[0]", "file_parser": "plugins[1]"}
        )
    assert caught.value.param == "plugins[1]"
    assert "file_parser" in caught.value.message
    with pytest.raises(errors.InvalidRequest) as caught:
        fees.priced_attempts([PLAIN], {"web_search": "tools[0].type"})
    assert caught.value.param == "tools[0].type"


def test_a_fee_in_nanos_rounds_up_and_an_unpriced_one_raises() -> None:
    price = Price(Decimal(1), Decimal(2), fees=(("web_search", Decimal("0.0000000015")),))
    assert price.fee_nanos(["web_search"]) == 2
    assert price.fee_nanos([]) == 0
    with pytest.raises(ValueError, match="file_parser"):
        price.fee_nanos(["file_parser"])
