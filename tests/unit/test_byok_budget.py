"""What a request served with the account's own provider key may cost and is charged
(gatewayz/chat/budget.py, gatewayz/billing/pricing.py): a percentage of the catalog cost,
rounded up, with a hold that still bounds it. Prices of $1 and $2 per million tokens are
1,000 and 2,000 nanos a token."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from gatewayz.billing.pricing import Offer, Price, Usage, before_percent_nanos, percent_nanos
from gatewayz.chat import budget
from gatewayz.chat import request as chat_request
from gatewayz.chat.model import Model
from gatewayz.chat.providers import REGISTRY, Upstream
from gatewayz.chat.routing import Attempt

OURS = Upstream(REGISTRY["featherless"], "http://featherless.test/v1", "ours")
OWN = Upstream(REGISTRY["openrouter"], "http://openrouter.test/v1", "customer", own_key=True)
MODEL = Model(id="test/m", name="m", context_length=8_192, max_output_tokens=1_024)
PRICE = Price(Decimal(1), Decimal(2), fees=(("web_search", Decimal("0.02")),))
FIVE = Decimal(5)


def attempt(upstream: Upstream) -> Attempt:
    offer = Offer("test/m", upstream.name, f"{upstream.name}/m", 10, PRICE)
    return Attempt(MODEL, offer, upstream)


def chat(**fields: object) -> chat_request.CompletionRequest:
    body = {"model": "test/m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return chat_request.parse(body, chat=True)


def test_the_key_is_never_in_an_upstreams_repr() -> None:
    assert "customer" not in repr(OWN)
    assert "ours" not in repr(OURS)


@pytest.mark.parametrize(
    ("nanos", "percent", "fee"),
    [(1_000_000, FIVE, 50_000), (19, FIVE, 1), (20, FIVE, 1), (21, FIVE, 2), (0, FIVE, 0),
     (999, Decimal("2.5"), 25), (12_345, Decimal(0), 0), (12_345, Decimal(100), 12_345)],
)  # fmt: skip
def test_the_fee_is_its_percentage_rounded_up(nanos: int, percent: Decimal, fee: int) -> None:
    assert percent_nanos(nanos, percent) == fee


def test_a_budget_covers_the_largest_cost_whose_fee_fits_it() -> None:
    rng = random.Random(7)
    for _ in range(2_000):
        held = rng.randrange(0, 10**12)
        percent = Decimal(rng.randrange(1, 10_001)) / 100  # 0.01 % to 100 %
        covered = before_percent_nanos(held, percent)
        assert percent_nanos(covered, percent) <= held
        assert percent_nanos(covered + 1, percent) > held


def test_an_own_key_route_holds_and_charges_the_fee_share_of_the_catalog_cost() -> None:
    request = chat()
    ours = budget.plan([attempt(OURS)], request, byok_percent=FIVE)
    own = budget.plan([attempt(OWN)], request, byok_percent=FIVE)
    (route,) = own.routes
    assert route.byok_percent == FIVE
    assert ours.routes[0].byok_percent is None
    assert own.max_nanos == -(-ours.max_nanos * 5 // 100)
    assert own.min_nanos == -(-ours.min_nanos * 5 // 100)
    usage = Usage(input_tokens=7, output_tokens=3)
    catalog = 7 * 1_000 + 3 * 2_000
    assert route.catalog_nanos(usage) == catalog
    assert route.charge_nanos(catalog) == -(-catalog * 5 // 100)


def test_with_a_fallback_on_our_key_the_hold_covers_the_dearer_route() -> None:
    request = chat()
    both = budget.plan([attempt(OWN), attempt(OURS)], request, byok_percent=FIVE)
    ours = budget.plan([attempt(OURS)], request, byok_percent=FIVE)
    assert both.max_nanos == ours.max_nanos
    # A hold that pays only for the own-key route: it keeps its full cap, ours is dropped.
    own_hold = budget.plan([attempt(OWN)], request, byok_percent=FIVE).max_nanos
    own_route, our_route = both.routes
    assert both.cap(own_route, own_hold) == 1_024
    assert both.cap(our_route, own_hold) is None


def test_a_smaller_hold_lowers_the_cap_to_what_its_fee_share_pays_for() -> None:
    plan = budget.plan([attempt(OWN)], chat(), byok_percent=FIVE)
    (route,) = plan.routes
    for held in range(plan.min_nanos, plan.max_nanos + 1, 97):
        cap = plan.cap(route, held)
        assert cap is not None
        # The most this cap can cost is within the hold; one more token would not be.
        worst = Usage(input_tokens=route.prompt_tokens, output_tokens=cap)
        assert route.charge_nanos(route.catalog_nanos(worst)) <= held
        if cap < route.cap:
            more = Usage(input_tokens=route.prompt_tokens, output_tokens=cap + 1)
            assert route.charge_nanos(route.catalog_nanos(more)) > held


def test_feature_fees_are_part_of_the_catalog_cost_the_percentage_applies_to() -> None:
    request = chat(web_search_options={})
    plan = budget.plan([attempt(OWN)], request, byok_percent=FIVE)
    (route,) = plan.routes
    assert route.fee_nanos == 20_000_000
    assert route.catalog_nanos(Usage(input_tokens=10)) == 10_000 + 20_000_000
    assert route.catalog_nanos(Usage(input_tokens=10), fees=False) == 10_000
    assert route.charge_nanos(20_010_000) == 1_000_500
