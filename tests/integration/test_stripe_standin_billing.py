"""The Stripe stripe_fake's subscriptions, invoices, renewals, billing portal and disputes, driven
by the real `stripe` stripe_client and the local controls."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import stripe

if TYPE_CHECKING:
    from tests.fakes.stripe import FakeStripe, Receiver


def monthly(stripe_client: stripe.StripeClient, cents: int, name: str = "Pro") -> Any:
    product = stripe_client.v1.products.create(params={"name": name})
    params: Any = {
        "unit_amount": cents,
        "currency": "usd",
        "product": product.id,
        "recurring": {"interval": "month"},
    }
    return stripe_client.v1.prices.create(params=params)


def subscribe(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, price: str, **more: Any
) -> Any:
    """A paid subscription-mode checkout; the session, expanded."""
    customer = stripe_client.v1.customers.create(params={"email": "sub@example.com"})
    params: Any = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": price, "quantity": 1}],
        "subscription_data": {"metadata": {"plan_id": "pro"}},
        "success_url": "https://app.example/ok",
        **more,
    }
    session = stripe_client.v1.checkout.sessions.create(params=params)
    assert stripe_fake.pay(session.id).status_code == 200
    expand = {"expand": ["subscription", "invoice"]}
    return stripe_client.v1.checkout.sessions.retrieve(session.id, params=expand)


def test_paying_a_subscription_checkout_starts_it_with_a_paid_invoice(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    price = monthly(stripe_client, 2000)
    assert stripe_client.v1.prices.retrieve(price.id).recurring.interval == "month"

    session = subscribe(stripe_fake, stripe_client, price.id)

    sub, invoice = session.subscription, session.invoice
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert (sub.status, sub.customer, sub.metadata.to_dict()) == (
        "active",
        session.customer,
        {"plan_id": "pro"},
    )
    item = sub["items"].data[0]
    assert item.price.id == price.id
    assert item.current_period_start == sub.current_period_start
    assert item.current_period_end == sub.current_period_end > sub.current_period_start
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        2000,
        "subscription_create",
    )
    assert invoice.subscription == sub.id
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.lines.data[0].price.id == price.id
    order = [
        t for t in stripe_receiver.types if t.startswith(("customer.", "invoice.paid", "checkout."))
    ]
    assert order == ["customer.subscription.created", "invoice.paid", "checkout.session.completed"]


def test_a_renewal_bills_the_next_period_and_a_failed_one_makes_it_past_due(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    session = subscribe(stripe_fake, stripe_client, monthly(stripe_client, 1500).id)
    sub = session.subscription
    stripe_receiver.received.clear()

    renewed = stripe_fake.control(f"subscriptions/{sub.id}/renew")

    assert renewed.status_code == 200
    assert renewed.json()["current_period_start"] == sub.current_period_end
    assert stripe_receiver.types[0] == "customer.subscription.updated"
    paid = stripe_receiver.of("invoice.paid")
    assert len(paid) == 1
    assert (paid[0].data.object.billing_reason, paid[0].data.object.amount_paid) == (
        "subscription_cycle",
        1500,
    )
    stripe_receiver.received.clear()

    failed = stripe_fake.control(f"subscriptions/{sub.id}/renew", fail="1")

    assert failed.json()["status"] == "past_due"
    assert len(stripe_receiver.of("invoice.payment_failed")) == 1
    assert stripe_receiver.of("invoice.paid") == []
    last = stripe_receiver.received[-1]
    assert (last.type, last.data.previous_attributes.status) == (
        "customer.subscription.updated",
        "active",
    )


def test_plan_changes_and_cancel_at_period_end_then_the_period_ends(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    sub = subscribe(stripe_fake, stripe_client, monthly(stripe_client, 1000).id).subscription
    bigger = monthly(stripe_client, 5000, "Team")
    item_id = sub["items"].data[0].id

    changed = stripe_client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item_id, "price": bigger.id}]}
    )
    assert changed["items"].data[0].price.id == bigger.id
    update = stripe_receiver.received[-1]
    assert update.type == "customer.subscription.updated"
    assert update.data.previous_attributes["items"].data[0].price.unit_amount == 1000

    ending = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert (ending.cancel_at_period_end, ending.cancel_at) == (True, sub.current_period_end)
    stripe_fake.control(f"subscriptions/{sub.id}/renew")

    assert stripe_receiver.types[-1] == "customer.subscription.deleted"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.cancel(sub.id)


def test_deleting_a_subscription_cancels_it_now(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    sub = subscribe(stripe_fake, stripe_client, monthly(stripe_client, 1000).id).subscription
    canceled = stripe_client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled"
    assert canceled.ended_at is not None
    assert stripe_receiver.types[-1] == "customer.subscription.deleted"


def test_the_billing_portal_page_cancels_at_period_end(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    session = subscribe(stripe_fake, stripe_client, monthly(stripe_client, 2000).id)
    portal = stripe_client.v1.billing_portal.sessions.create(
        params={"customer": session.customer, "return_url": "https://app.example/billing"}
    )
    assert portal.object == "billing_portal.session"

    page = httpx.get(portal.url)
    assert page.status_code == 200
    assert session.subscription.id in page.text
    assert "https://app.example/billing" in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    after = httpx.post(httpx.URL(portal.url).join(action.group(1)), follow_redirects=True)

    assert after.status_code == 200
    assert "cancels at period end" in after.text
    assert stripe_client.v1.subscriptions.retrieve(session.subscription.id).cancel_at_period_end
    assert stripe_receiver.received[-1].data.previous_attributes.cancel_at_period_end is False


def test_a_portal_cannot_touch_another_customers_subscription(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient
) -> None:
    mine = subscribe(stripe_fake, stripe_client, monthly(stripe_client, 2000).id)
    other = stripe_client.v1.customers.create(params={})
    portal = stripe_client.v1.billing_portal.sessions.create(params={"customer": other.id})
    page = httpx.get(portal.url)
    assert mine.subscription.id not in page.text
    path = f"/_local/portal/{portal.id}/subscriptions/{mine.subscription.id}/cancel"
    refused = httpx.post(stripe_fake.api_base + path)
    assert refused.status_code == 404
    assert not stripe_client.v1.subscriptions.retrieve(mine.subscription.id).cancel_at_period_end


def test_a_dispute_on_a_charge_is_an_event_with_its_amount(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    invoice = subscribe(stripe_fake, stripe_client, monthly(stripe_client, 2500).id).invoice
    charge = stripe_client.v1.charges.retrieve(invoice.charge)

    opened = stripe_fake.control(f"charges/{charge.id}/dispute", amount="2000")

    assert opened.status_code == 200
    dispute = stripe_receiver.of("charge.dispute.created")[0].data.object
    assert dispute.id.startswith("dp_")
    assert (dispute.amount, dispute.charge, dispute.payment_intent) == (
        2000,
        charge.id,
        charge.payment_intent,
    )
    assert stripe_client.v1.charges.retrieve(charge.id).disputed is True
    assert stripe_fake.control(f"charges/{charge.id}/dispute").status_code == 400


def test_a_one_time_coupon_discounts_only_the_first_invoice(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 50, "duration": "once"})
    session = subscribe(
        stripe_fake,
        stripe_client,
        monthly(stripe_client, 2000).id,
        discounts=[{"coupon": coupon.id}],
    )
    assert (session.amount_total, session.invoice.amount_paid) == (1000, 1000)
    stripe_fake.control(f"subscriptions/{session.subscription.id}/renew")
    assert stripe_receiver.of("invoice.paid")[-1].data.object.amount_paid == 2000
