"""Checkout Sessions of the Stripe stand-in: created by the API, paid on the local page."""

from __future__ import annotations

from typing import Any

from gatewayz.dev.stripe_standin import catalog, payments, subscriptions
from gatewayz.dev.stripe_standin.objects import (
    Obj,
    State,
    StripeError,
    base,
    integer,
    metadata,
    missing_param,
    new_id,
    now,
    text,
)

SESSION_LIFETIME_S = 24 * 3600  # Stripe's default `expires_at`


def create_session(state: State, params: Obj) -> Obj:
    """`POST /v1/checkout/sessions` in `payment` or `subscription` mode.

    Raises:
        StripeError: 400 for bad parameters, 404 for an unknown customer, price or coupon.
    """
    mode = text(params, "mode", required=True)
    if mode not in ("payment", "subscription"):
        raise StripeError(
            400,
            f"Invalid mode: {mode} (the stand-in serves payment and subscription)",
            param="mode",
        )
    customer = text(params, "customer")
    if customer is not None:
        state.get(customer, "customer", "customer")
    items = [_line_item(state, item, i, mode) for i, item in enumerate(_list(params, "line_items"))]
    if not items:
        raise missing_param("line_items")
    currencies = {item["currency"] for item in items}
    if len(currencies) > 1:
        raise StripeError(400, "All line items must have the same currency.", param="line_items")
    coupon = _coupon(state, params)
    subtotal = sum(item["amount_subtotal"] for item in items)
    off = catalog.discount(coupon, subtotal) if coupon else 0
    expires_at = integer(params, "expires_at") or now() + SESSION_LIFETIME_S
    session = base(
        "cs_test",
        "checkout.session",
        mode=mode,
        status="open",
        payment_status="unpaid",
        amount_subtotal=subtotal,
        amount_total=subtotal - off,
        total_details={"amount_discount": off, "amount_shipping": 0, "amount_tax": 0},
        currency=currencies.pop(),
        customer=customer,
        customer_email=text(params, "customer_email"),
        customer_details=None,
        client_reference_id=text(params, "client_reference_id"),
        discounts=[{"coupon": coupon["id"], "promotion_code": None}] if coupon else [],
        metadata=metadata(params),
        success_url=text(params, "success_url"),
        cancel_url=text(params, "cancel_url"),
        expires_at=expires_at,
        payment_intent=None,
        payment_method_types=["card"],
        setup_intent=None,
        subscription=None,
        invoice=None,
        ui_mode="hosted",
    )
    session["url"] = f"{state.base_url}/pay/{session['id']}"
    pi_data = params.get("payment_intent_data") or {}
    sub_data = params.get("subscription_data") or {}
    state.private[session["id"]] = {
        "line_items": items,
        "coupon": coupon,
        "pi_metadata": metadata(pi_data) if isinstance(pi_data, dict) else {},
        "setup_future_usage": text(pi_data, "setup_future_usage")
        if isinstance(pi_data, dict)
        else None,
        "sub_metadata": metadata(sub_data) if isinstance(sub_data, dict) else {},
    }
    return state.put(session)


def _list(params: Obj, name: str) -> list[Any]:
    value = params.get(name) or []
    if not isinstance(value, list):
        raise StripeError(400, f"Invalid array: {name}", param=name)
    return value


def _line_item(state: State, item: Any, index: int, mode: str) -> Obj:
    at = f"line_items[{index}]"
    if not isinstance(item, dict):
        raise StripeError(400, f"Invalid hash: {at}", param=at)
    quantity = integer(item, "quantity", minimum=1) or 1
    price_id = text(item, "price")
    if price_id is not None:
        price = state.get(price_id, "price", f"{at}[price]")
    else:
        data = item.get("price_data")
        if not isinstance(data, dict):
            raise missing_param(f"{at}[price_data]")
        product = text(data, "product")
        product_data = data.get("product_data")
        if product is None:
            if not isinstance(product_data, dict):
                raise missing_param(f"{at}[price_data][product_data]")
            product = catalog.create_product(state, product_data)["id"]
        price = state.put(catalog.new_price(data, product, f"{at}[price_data]"))
    if (price["recurring"] is not None) != (mode == "subscription"):
        raise StripeError(
            400,
            "You must provide at least one recurring price in `subscription` mode."
            if mode == "subscription"
            else "You specified `payment` mode but passed a recurring price.",
            param=f"{at}[price]",
        )
    name = state.objects.get(price["product"], {}).get("name")
    amount = price["unit_amount"] * quantity
    return {
        "id": new_id("li"),
        "object": "item",
        "amount_subtotal": amount,
        "amount_total": amount,
        "amount_discount": 0,
        "amount_tax": 0,
        "currency": price["currency"],
        "description": name,
        "price": price,
        "quantity": quantity,
    }


def _coupon(state: State, params: Obj) -> Obj | None:
    discounts = _list(params, "discounts")
    if not discounts:
        return None
    coupon_id = (
        text(discounts[0], "coupon", required=True) if isinstance(discounts[0], dict) else None
    )
    return state.get(coupon_id, "coupon", "discounts[0][coupon]")


def line_items(state: State, session_id: str) -> list[Obj]:
    state.get(session_id, "checkout.session")
    items: list[Obj] = state.private[session_id]["line_items"]
    return items


def expire(state: State, session_id: str) -> Obj:
    """`POST /v1/checkout/sessions/{id}/expire`.

    Raises:
        StripeError: 400 unless the session is open.
    """
    session = _open(state, session_id)
    session["status"] = "expired"
    state.emit("checkout.session.expired", session)
    return session


def _open(state: State, session_id: str) -> Obj:
    session = state.get(session_id, "checkout.session")
    if session["status"] == "open" and session["expires_at"] <= now():
        expire(state, session_id)
    if session["status"] != "open":
        raise StripeError(
            400,
            f"This Checkout Session is no longer open (status {session['status']}).",
            code="checkout_session_not_open",
        )
    return session


def pay(
    state: State, session_id: str, *, decline: bool = False, card_number: str | None = None
) -> Obj:
    """Complete the session as a customer paying on Stripe's page would (a local control);
    `card_number` names the card (its fingerprint), else it is a card never seen before.

    Raises:
        StripeError: 400 when it is not open (paying twice); 402 card_error when declined.
    """
    session = _open(state, session_id)
    hidden = state.private[session_id]
    customer = session["customer"]
    if customer is None and (session["mode"] == "subscription" or hidden["setup_future_usage"]):
        customer = catalog.create_customer(state, {"email": session["customer_email"]})["id"]
    fingerprint = catalog.fingerprint_of(card_number) if card_number else None
    pm = state.put(catalog.new_card("visa", "0002" if decline else "4242", fingerprint=fingerprint))
    if customer is not None and customer in state.declining:
        pm["card"]["last4"] = "0002"
    keep = customer is not None and (
        session["mode"] == "subscription" or hidden["setup_future_usage"] is not None
    )
    if keep and not catalog.declines(state, pm):
        pm["customer"] = customer
        state.emit("payment_method.attached", pm)
    if session["mode"] == "subscription":
        _subscribe(state, session, customer or "", pm)
    elif session["amount_total"] > 0:
        pi = payments.charge(
            state,
            amount=session["amount_total"],
            currency=session["currency"],
            customer=customer,
            pm=pm,
            meta=hidden["pi_metadata"],
            setup_future_usage=hidden["setup_future_usage"],
        )
        if pi["status"] != "succeeded":
            raise payments.declined_error(pi)
        session["payment_intent"] = pi["id"]
    if hidden["coupon"] is not None:
        hidden["coupon"]["times_redeemed"] += 1
    email = session["customer_email"] or "customer@example.com"
    session.update(
        status="complete",
        payment_status="paid" if session["amount_total"] > 0 else "no_payment_required",
        customer=customer,
        customer_details={"email": email, "name": None, "address": None},
    )
    state.emit("checkout.session.completed", session)
    return session


def _subscribe(state: State, session: Obj, customer: str, pm: Obj) -> None:
    if catalog.declines(state, pm) and session["amount_total"] > 0:
        pi = payments.charge(
            state,
            amount=session["amount_total"],
            currency=session["currency"],
            customer=customer,
            pm=pm,
        )
        raise payments.declined_error(pi)
    hidden = state.private[session["id"]]
    items = [(item["price"], item["quantity"]) for item in hidden["line_items"]]
    sub = subscriptions.start(
        state,
        customer=customer,
        items=items,
        meta=hidden["sub_metadata"],
        coupon=hidden["coupon"],
        pm=pm,
    )
    session.update(subscription=sub["id"], invoice=sub["latest_invoice"])
