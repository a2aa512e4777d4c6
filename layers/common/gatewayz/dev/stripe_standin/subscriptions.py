"""Subscriptions, their invoices, and billing portal sessions of the Stripe stand-in."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from gatewayz.dev.stripe_standin import catalog, payments
from gatewayz.dev.stripe_standin.objects import (
    Obj,
    State,
    StripeError,
    base,
    boolean,
    metadata,
    new_id,
    now,
    text,
)


def period_end(start: int, recurring: Obj) -> int:
    """The end of a billing period starting at `start` (months keep their day, as Stripe)."""
    moment = datetime.fromtimestamp(start, UTC)
    count = recurring["interval_count"]
    interval = recurring["interval"]
    if interval in ("day", "week"):
        days = count * (7 if interval == "week" else 1)
        return int((moment + timedelta(days=days)).timestamp())
    months = moment.month - 1 + count * (12 if interval == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def start(
    state: State,
    *,
    customer: str,
    items: list[tuple[Obj, int]],
    meta: Obj,
    coupon: Obj | None,
    pm: Obj,
) -> Obj:
    """A subscription to `items` (price, quantity), billed at once on the saved card."""
    begin = now()
    end = period_end(begin, items[0][0]["recurring"])
    sub = state.put(
        base(
            "sub",
            "subscription",
            customer=customer,
            status="active",
            cancel_at_period_end=False,
            cancel_at=None,
            canceled_at=None,
            ended_at=None,
            collection_method="charge_automatically",
            currency=items[0][0]["currency"],
            current_period_start=begin,
            current_period_end=end,
            start_date=begin,
            default_payment_method=pm["id"],
            discounts=[coupon["id"]] if coupon else [],
            latest_invoice=None,
            metadata=meta,
        )
    )
    sub["items"] = {
        "object": "list",
        "data": [
            base(
                "si",
                "subscription_item",
                price=price,
                quantity=quantity,
                subscription=sub["id"],
                current_period_start=begin,
                current_period_end=end,
                metadata={},
            )
            for price, quantity in items
        ],
        "has_more": False,
        "url": f"/v1/subscription_items?subscription={sub['id']}",
    }
    state.private[sub["id"]] = {"coupon": coupon}
    state.emit("customer.subscription.created", sub)
    bill(state, sub, "subscription_create")
    return sub


def bill(state: State, sub: Obj, reason: str, *, fail: bool = False) -> Obj:
    """An invoice for the subscription's current period, charged to its card."""
    lines = []
    for item in sub["items"]["data"]:
        price = item["price"]
        lines.append(
            {
                "id": new_id("il"),
                "object": "line_item",
                "amount": price["unit_amount"] * item["quantity"],
                "currency": price["currency"],
                "description": f"{item['quantity']} x {price['nickname'] or price['product']}",
                "period": {
                    "start": item["current_period_start"],
                    "end": item["current_period_end"],
                },
                "price": price,
                "pricing": {
                    "type": "price_details",
                    "price_details": {"price": price["id"], "product": price["product"]},
                },
                "quantity": item["quantity"],
                "subscription": sub["id"],
                "metadata": {},
            }
        )
    subtotal = sum(line["amount"] for line in lines)
    coupon = state.private.get(sub["id"], {}).get("coupon")
    applies = coupon is not None and (
        coupon["duration"] != "once" or reason == "subscription_create"
    )
    total = subtotal - (catalog.discount(coupon, subtotal) if applies and coupon else 0)
    invoice = state.put(
        base(
            "in",
            "invoice",
            customer=sub["customer"],
            subscription=sub["id"],
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "subscription": sub["id"],
                    "metadata": dict(sub["metadata"]),
                },
            },
            billing_reason=reason,
            collection_method="charge_automatically",
            currency=sub["currency"],
            subtotal=subtotal,
            total=total,
            amount_due=total,
            amount_paid=0,
            amount_remaining=total,
            attempted=False,
            paid=False,
            status="open",
            period_start=sub["current_period_start"],
            period_end=sub["current_period_end"],
            lines={"object": "list", "data": lines, "has_more": False, "url": "/v1/invoices/lines"},
            payment_intent=None,
            charge=None,
            payments={
                "object": "list",
                "data": [],
                "has_more": False,
                "url": "/v1/invoice_payments",
            },
            status_transitions={"finalized_at": now(), "paid_at": None},
            metadata={},
        )
    )
    sub["latest_invoice"] = invoice["id"]
    state.emit("invoice.created", invoice)
    state.emit("invoice.finalized", invoice)
    pm = state.objects.get(sub["default_payment_method"] or "")
    paid = total == 0
    if not paid and pm is not None and not fail:
        pi = payments.charge(
            state,
            amount=total,
            currency=invoice["currency"],
            customer=sub["customer"],
            pm=pm,
            description=f"Subscription {reason.replace('_', ' ')}",
        )
        invoice.update(payment_intent=pi["id"], charge=pi["latest_charge"])
        invoice["payments"]["data"].append(
            {
                "id": new_id("inpay"),
                "object": "invoice_payment",
                "amount_paid": total,
                "status": "paid" if pi["status"] == "succeeded" else "open",
                "payment": {"type": "payment_intent", "payment_intent": pi["id"]},
            }
        )
        paid = pi["status"] == "succeeded"
    invoice["attempted"] = True
    if not paid:
        state.emit("invoice.payment_failed", invoice)
        return invoice
    invoice.update(status="paid", paid=True, amount_paid=total, amount_remaining=0)
    invoice["status_transitions"]["paid_at"] = now()
    state.emit("invoice.paid", invoice)
    state.emit("invoice.payment_succeeded", invoice)
    return invoice


def renew(state: State, sub_id: str, *, fail: bool = False) -> Obj:
    """The next period (a local control): a cycle invoice, or the end of a subscription set to
    cancel at period end.

    Raises:
        StripeError: 400 for a canceled subscription.
    """
    sub = state.get(sub_id, "subscription")
    if sub["status"] == "canceled":
        raise StripeError(400, f"Subscription {sub_id} is canceled.", param="subscription")
    if sub["cancel_at_period_end"]:
        return _end(state, sub)
    begin = sub["current_period_end"]
    end = period_end(begin, sub["items"]["data"][0]["price"]["recurring"])
    previous = {
        "current_period_start": sub["current_period_start"],
        "current_period_end": sub["current_period_end"],
    }
    sub.update(current_period_start=begin, current_period_end=end)
    for item in sub["items"]["data"]:
        item.update(current_period_start=begin, current_period_end=end)
    state.emit("customer.subscription.updated", sub, previous)
    invoice = bill(state, sub, "subscription_cycle", fail=fail)
    status = "active" if invoice["paid"] else "past_due"
    if sub["status"] != status:
        previous = {"status": sub["status"]}
        sub["status"] = status
        state.emit("customer.subscription.updated", sub, previous)
    return sub


def update(state: State, sub_id: str, params: Obj) -> Obj:
    """`POST /v1/subscriptions/{id}`: cancel at period end (or not), change price, metadata.

    Raises:
        StripeError: 400 for a canceled subscription or an unknown item or price.
    """
    sub = state.get(sub_id, "subscription")
    if sub["status"] == "canceled":
        raise StripeError(
            400, "A canceled subscription can only update its metadata.", param="subscription"
        )
    previous: Obj = {}
    cancel = boolean(params, "cancel_at_period_end")
    if cancel is not None and cancel != sub["cancel_at_period_end"]:
        previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
        previous["cancel_at"] = sub["cancel_at"]
        sub["cancel_at_period_end"] = cancel
        sub["cancel_at"] = sub["current_period_end"] if cancel else None
    meta = metadata(params, sub["metadata"])
    if meta != sub["metadata"]:
        previous["metadata"] = sub["metadata"]
        sub["metadata"] = meta
    for index, change in enumerate(params.get("items") or []):
        item = next((i for i in sub["items"]["data"] if i["id"] == change.get("id")), None)
        if item is None:
            raise missing_item(change.get("id"), index)
        price = state.get(text(change, "price", required=True), "price", f"items[{index}][price]")
        if price["recurring"] is None:
            raise StripeError(400, "The price must be recurring.", param=f"items[{index}][price]")
        if price["id"] != item["price"]["id"]:
            previous.setdefault("items", copy_items(sub))
            item["price"] = price
    if previous:
        state.emit("customer.subscription.updated", sub, previous)
    return sub


def missing_item(ident: object, index: int) -> StripeError:
    return StripeError(
        400,
        f"No such subscription item: '{ident}'",
        code="resource_missing",
        param=f"items[{index}][id]",
    )


def copy_items(sub: Obj) -> Obj:
    return {**sub["items"], "data": [dict(item) for item in sub["items"]["data"]]}


def cancel(state: State, sub_id: str) -> Obj:
    """`DELETE /v1/subscriptions/{id}`: canceled now.

    Raises:
        StripeError: 400 when it already is.
    """
    sub = state.get(sub_id, "subscription")
    if sub["status"] == "canceled":
        raise StripeError(400, f"Subscription {sub_id} is already canceled.", param="subscription")
    return _end(state, sub)


def _end(state: State, sub: Obj) -> Obj:
    sub.update(status="canceled", canceled_at=sub["canceled_at"] or now(), ended_at=now())
    state.emit("customer.subscription.deleted", sub)
    return sub


def create_portal(state: State, params: Obj) -> Obj:
    """`POST /v1/billing_portal/sessions` → a local page managing the customer's plan."""
    customer = text(params, "customer", required=True)
    state.get(customer, "customer", "customer")
    session = base(
        "bps",
        "billing_portal.session",
        customer=customer,
        return_url=text(params, "return_url"),
        configuration=None,
        locale=None,
        on_behalf_of=None,
        flow=None,
    )
    session["url"] = f"{state.base_url}/portal/{session['id']}"
    return state.put(session)
