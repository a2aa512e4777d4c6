"""Customers, saved cards, products, prices and coupons of the Stripe stand-in."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from gatewayz.dev.stripe_standin.objects import (
    Obj,
    State,
    StripeError,
    base,
    boolean,
    integer,
    metadata,
    missing_param,
    text,
)

# Stripe's test payment methods: usable by id without creating them.
TEST_CARDS = {
    "pm_card_visa": ("visa", "4242", False),
    "pm_card_mastercard": ("mastercard", "4444", False),
    "pm_card_chargeDeclined": ("visa", "0002", True),
    "pm_card_visa_chargeDeclined": ("visa", "0002", True),
}
_INTERVALS = ("day", "week", "month", "year")


def create_customer(state: State, params: Obj) -> Obj:
    return state.put(
        base(
            "cus",
            "customer",
            email=text(params, "email"),
            name=text(params, "name"),
            description=text(params, "description"),
            metadata=metadata(params),
            invoice_settings={"default_payment_method": None},
            balance=0,
            currency=None,
            delinquent=False,
        )
    )


def update_customer(state: State, ident: str, params: Obj) -> Obj:
    customer = state.get(ident, "customer")
    for name in ("email", "name", "description"):
        if name in params:
            customer[name] = text(params, name)
    customer["metadata"] = metadata(params, customer["metadata"])
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        pm_id = text(settings, "default_payment_method")
        param = "invoice_settings[default_payment_method]"
        if pm_id is not None and card(state, pm_id, param)["customer"] != ident:
            raise StripeError(
                400,
                f"The payment method {pm_id} is not attached to customer {ident}.",
                param=param,
            )
        customer["invoice_settings"]["default_payment_method"] = pm_id
    return customer


def card(state: State, ident: str, param: str = "payment_method") -> Obj:
    """A saved card, or one of Stripe's test cards (made on first use).

    Raises:
        StripeError: 404 for an unknown id.
    """
    if ident in TEST_CARDS and ident not in state.objects:
        brand, last4, _declines = TEST_CARDS[ident]
        state.put(new_card(brand, last4, ident=ident, fingerprint=fingerprint_of(ident)))
    return state.get(ident, "payment_method", param)


def fingerprint_of(number: str) -> str:
    """A card number's fingerprint: the same for every use of the same number, as in
    Stripe (`card.fingerprint`), and telling nothing of the number."""
    return hashlib.sha256(b"standin-card:" + number.encode()).hexdigest()[:16]


def new_card(
    brand: str = "visa",
    last4: str = "4242",
    ident: str | None = None,
    fingerprint: str | None = None,
) -> Obj:
    """A card; without a `fingerprint` it stands for a card number never seen before."""
    obj = base(
        "pm",
        "payment_method",
        type="card",
        card={
            "brand": brand,
            "last4": last4,
            "exp_month": 12,
            "exp_year": 2034,
            "funding": "credit",
            "country": "US",
            "fingerprint": fingerprint or secrets.token_hex(8),
        },
        billing_details={"email": None, "name": None},
        customer=None,
        metadata={},
    )
    if ident is not None:
        obj["id"] = ident
    return obj


def save_card(state: State, customer_id: str, declines: bool = False) -> Obj:
    """A new card attached to the customer, as a paid checkout saves it."""
    pm = state.put(new_card("visa", "0002" if declines else "4242"))
    pm["customer"] = customer_id
    state.emit("payment_method.attached", pm)
    return pm


def declines(state: State, pm: Obj) -> bool:
    """Whether a charge on this card is declined (a declining test card, or its customer's)."""
    if pm["id"] in TEST_CARDS:
        return TEST_CARDS[pm["id"]][2]
    return pm["customer"] in state.declining or pm["card"]["last4"] == "0002"


def customer_cards(state: State, customer_id: str) -> list[Obj]:
    state.get(customer_id, "customer", "customer")
    cards = [
        obj
        for obj in state.objects.values()
        if obj["object"] == "payment_method" and obj["customer"] == customer_id
    ]
    return sorted(cards, key=lambda pm: pm["created"], reverse=True)


def create_product(state: State, params: Obj) -> Obj:
    return state.put(
        base(
            "prod",
            "product",
            name=text(params, "name", required=True),
            active=boolean(params, "active") is not False,
            description=text(params, "description"),
            metadata=metadata(params),
        )
    )


def create_price(state: State, params: Obj) -> Obj:
    product = text(params, "product")
    product_data = params.get("product_data")
    if product is None and isinstance(product_data, dict):
        product = create_product(state, product_data)["id"]
    elif product is None:
        raise missing_param("product")
    else:
        state.get(product, "product", "product")
    return state.put(new_price(params, product))


def new_price(params: Obj, product: str, prefix: str = "") -> Obj:
    """A price from `unit_amount`, `currency` and `recurring[interval]` (params at `prefix`).

    Raises:
        StripeError: 400 for a missing amount or currency, or a bad interval.
    """
    amount = integer(params, "unit_amount", required=True)
    currency = (text(params, "currency", required=True) or "").lower()
    recurring = params.get("recurring")
    if recurring is not None:
        if not isinstance(recurring, dict) or recurring.get("interval") not in _INTERVALS:
            raise StripeError(
                400, "Invalid recurring[interval]", param=f"{prefix}recurring[interval]"
            )
        recurring = {
            "interval": recurring["interval"],
            "interval_count": integer(recurring, "interval_count", minimum=1) or 1,
            "usage_type": "licensed",
        }
    return base(
        "price",
        "price",
        active=True,
        currency=currency,
        unit_amount=amount,
        unit_amount_decimal=str(amount),
        product=product,
        recurring=recurring,
        type="recurring" if recurring else "one_time",
        billing_scheme="per_unit",
        lookup_key=text(params, "lookup_key"),
        nickname=text(params, "nickname"),
        metadata=metadata(params),
    )


def create_coupon(state: State, params: Obj) -> Obj:
    percent = text(params, "percent_off")
    amount_off = integer(params, "amount_off", minimum=1)
    if (percent is None) == (amount_off is None):
        raise StripeError(
            400, "Exactly one of percent_off or amount_off is required.", param="percent_off"
        )
    percent_off: float | None = None
    if percent is not None:
        try:
            percent_off = float(percent)
        except ValueError:
            raise StripeError(400, f"Invalid decimal: {percent}", param="percent_off") from None
        if not 0 < percent_off <= 100:
            raise StripeError(400, "percent_off must be between 0 and 100.", param="percent_off")
    duration = text(params, "duration") or "once"
    if duration not in ("once", "repeating", "forever"):
        raise StripeError(400, f"Invalid duration: {duration}", param="duration")
    coupon = base(
        "co",
        "coupon",
        percent_off=percent_off,
        amount_off=amount_off,
        currency=text(params, "currency"),
        duration=duration,
        duration_in_months=integer(params, "duration_in_months"),
        name=text(params, "name"),
        max_redemptions=integer(params, "max_redemptions"),
        times_redeemed=0,
        valid=True,
        metadata=metadata(params),
    )
    coupon["id"] = text(params, "id") or coupon["id"]
    if coupon["id"] in state.objects:
        raise StripeError(400, "Coupon already exists.", code="resource_already_exists", param="id")
    return state.put(coupon)


def discount(coupon: Obj, subtotal: int) -> int:
    """What `coupon` takes off `subtotal` (cents)."""
    off: Any = coupon["amount_off"]
    if coupon["percent_off"] is not None:
        off = round(subtotal * coupon["percent_off"] / 100)
    return min(int(off), subtotal)
