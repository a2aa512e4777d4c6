"""The Stripe stripe_fake (the local stand-in) driven by the real `stripe` stripe_client: customers,
checkout in payment mode, payment intents, refunds, idempotency and signed events."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import stripe

if TYPE_CHECKING:
    from tests.fakes.stripe import FakeStripe, Receiver


def credit_session(
    stripe_client: stripe.StripeClient, customer: str, cents: int = 2500, **more: Any
) -> Any:
    params: Any = {
        "mode": "payment",
        "customer": customer,
        "client_reference_id": "acct-1",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": cents,
                    "product_data": {"name": "Gatewayz credit"},
                },
                "quantity": 1,
            }
        ],
        "success_url": "https://app.example/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example/canceled",
        "metadata": {"payment_id": "pay-1"},
        "payment_intent_data": {"metadata": {"payment_id": "pay-1"}},
        **more,
    }
    return stripe_client.v1.checkout.sessions.create(params=params)


def test_customers_are_created_read_and_updated(stripe_client: stripe.StripeClient) -> None:
    created = stripe_client.v1.customers.create(
        params={"email": "ann@example.com", "name": "Ann", "metadata": {"account_id": "a1"}}
    )
    assert created.id.startswith("cus_")
    assert created.object == "customer"
    updated = stripe_client.v1.customers.update(
        created.id, params={"metadata": {"team": "blue", "account_id": ""}}
    )
    assert updated.metadata.to_dict() == {"team": "blue"}  # "" deletes a key, as in Stripe
    read = stripe_client.v1.customers.retrieve(created.id)
    assert (read.email, read.name, read.metadata.to_dict()) == (
        "ann@example.com",
        "Ann",
        {"team": "blue"},
    )
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.customers.retrieve("cus_unknown")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def test_a_paid_checkout_delivers_signed_events_the_stripe_library_accepts(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "ann@example.com"})
    session = credit_session(stripe_client, customer.id)
    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status, session.payment_intent) == (
        "open",
        "unpaid",
        None,
    )
    assert (session.amount_total, session.currency, session.mode) == (2500, "usd", "payment")
    assert session.url == f"{stripe_fake.api_base}/pay/{session.id}"

    paid = stripe_fake.pay(session.id)

    assert paid.status_code == 200
    assert stripe_receiver.types[-3:] == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "checkout.session.completed",
    ]
    completed = stripe_receiver.of("checkout.session.completed")[0]
    assert completed.livemode is False
    assert completed.api_version == stripe.api_version
    done = completed.data.object
    assert (done.id, done.status, done.payment_status) == (session.id, "complete", "paid")
    assert (done.client_reference_id, done.metadata.to_dict()) == (
        "acct-1",
        {"payment_id": "pay-1"},
    )
    pi = stripe_client.v1.payment_intents.retrieve(done.payment_intent)
    assert (pi.status, pi.amount, pi.customer) == ("succeeded", 2500, customer.id)
    assert pi.metadata.to_dict() == {"payment_id": "pay-1"}
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_captured, charge.paid, charge.payment_intent) == (2500, True, pi.id)
    assert stripe_receiver.rejected == 0
    assert [e.id for e in stripe_receiver.received] == [
        e["id"] for e in stripe_fake.events
    ]  # each once


def test_the_pay_page_works_as_a_browser_uses_it(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient
) -> None:
    customer = stripe_client.v1.customers.create(params={})
    session = credit_session(stripe_client, customer.id, cents=1234)

    page = httpx.get(session.url)
    assert page.status_code == 200
    assert "Local Stripe stand-in (test mode)" in page.text
    assert "12.34 USD" in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    target = httpx.URL(session.url).join(action.group(1))
    answer = httpx.post(target, data={"card": "success"})

    assert answer.status_code == 303
    assert answer.headers["location"] == f"https://app.example/paid?session={session.id}"
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "complete"
    again = httpx.post(target, data={"card": "success"})
    assert again.status_code == 400
    assert "no longer open" in again.text
    assert len(stripe_fake.events_of("checkout.session.completed")) == 1


def test_a_declined_card_on_the_page_leaves_the_session_open(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    session = credit_session(stripe_client, stripe_client.v1.customers.create(params={}).id)

    declined = stripe_fake.pay(session.id, card="decline")

    assert declined.status_code == 402
    assert declined.json()["error"]["code"] == "card_declined"
    assert stripe_receiver.types[-1] == "payment_intent.payment_failed"
    assert "checkout.session.completed" not in stripe_receiver.types
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert stripe_fake.pay(session.id).status_code == 200  # a good card afterwards pays


def test_a_coupon_lowers_the_total_and_expire_ends_a_session(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 20, "duration": "once"})
    customer = stripe_client.v1.customers.create(params={})
    session = credit_session(
        stripe_client, customer.id, cents=5000, discounts=[{"coupon": coupon.id}]
    )
    assert (session.amount_subtotal, session.amount_total) == (5000, 4000)
    assert session.total_details.amount_discount == 1000

    expired = stripe_client.v1.checkout.sessions.expire(session.id)

    assert expired.status == "expired"
    assert stripe_receiver.types == ["checkout.session.expired"]
    assert stripe_fake.pay(session.id).status_code == 400


def test_an_idempotency_key_replays_the_first_answer(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient
) -> None:
    params: Any = {"email": "same@example.com"}
    first = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    second = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    listed = stripe_client.v1.customers.list(params={"email": "same@example.com"})
    assert [c.id for c in listed.data] == [first.id]
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": "k-1"}
        )


def saved_card(stripe_fake: FakeStripe, stripe_client: stripe.StripeClient) -> tuple[str, str]:
    """A customer with a card saved by a paid checkout: (customer, payment method)."""
    customer = stripe_client.v1.customers.create(params={})
    session = credit_session(
        stripe_client, customer.id, payment_intent_data={"setup_future_usage": "off_session"}
    )
    assert stripe_fake.pay(session.id).status_code == 200
    cards = stripe_client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert len(cards.data) == 1
    pi = stripe_client.v1.payment_intents.retrieve(
        stripe_client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    assert pi.payment_method == cards.data[0].id
    return customer.id, cards.data[0].id


def test_an_off_session_payment_on_the_saved_card_and_its_decline(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    customer, card = saved_card(stripe_fake, stripe_client)
    assert [pm.id for pm in stripe_client.v1.customers.payment_methods.list(customer).data] == [
        card
    ]
    params: Any = {
        "amount": 1000,
        "currency": "usd",
        "customer": customer,
        "payment_method": card,
        "off_session": True,
        "confirm": True,
        "metadata": {"kind": "auto_topup"},
    }
    pi = stripe_client.v1.payment_intents.create(params=params)
    assert (pi.status, pi.amount_received) == ("succeeded", 1000)
    assert pi.latest_charge.startswith("ch_")
    assert (
        stripe_receiver.of("payment_intent.succeeded")[-1].data.object.metadata.kind == "auto_topup"
    )

    assert stripe_fake.control(f"customers/{customer}/decline").status_code == 200
    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.payment_intents.create(params=params)

    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    failed_pi = declined.value.error.payment_intent
    assert failed_pi.status == "requires_payment_method"
    assert stripe_receiver.types[-1] == "payment_intent.payment_failed"
    assert stripe_receiver.received[-1].data.object.id == failed_pi.id


def test_stripes_declining_test_card_declines_and_another_customers_card_is_refused(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient
) -> None:
    customer = stripe_client.v1.customers.create(params={})
    params: Any = {"amount": 700, "currency": "usd", "customer": customer.id, "confirm": True}
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_intents.create(
            params={**params, "payment_method": "pm_card_chargeDeclined"}
        )
    assert (
        stripe_client.v1.payment_intents.create(
            params={**params, "payment_method": "pm_card_visa"}
        ).status
        == "succeeded"
    )
    _other, card = saved_card(stripe_fake, stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(params={**params, "payment_method": card})
    assert refused.value.param == "payment_method"


def test_partial_refunds_accumulate_on_the_charge(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    session = credit_session(
        stripe_client, stripe_client.v1.customers.create(params={}).id, cents=3000
    )
    stripe_fake.pay(session.id)
    pi_id = stripe_client.v1.checkout.sessions.retrieve(session.id).payment_intent

    first = stripe_client.v1.refunds.create(params={"payment_intent": pi_id, "amount": 1000})
    refunded = stripe_receiver.of("charge.refunded")
    assert first.id.startswith("re_")
    assert first.amount == 1000
    assert (refunded[-1].data.object.amount_refunded, refunded[-1].data.object.refunded) == (
        1000,
        False,
    )
    assert refunded[-1].data.previous_attributes.amount_refunded == 0
    rest = stripe_client.v1.refunds.create(params={"charge": refunded[-1].data.object.id})

    assert rest.amount == 2000
    last = stripe_receiver.of("charge.refunded")[-1].data.object
    assert (last.amount_refunded, last.refunded) == (3000, True)
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.refunds.create(params={"payment_intent": pi_id})
    assert again.value.code == "charge_already_refunded"


def test_a_failed_delivery_is_kept_and_redelivered(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient, stripe_receiver: Receiver
) -> None:
    stripe_receiver.status = 500
    session = credit_session(stripe_client, stripe_client.v1.customers.create(params={}).id)
    stripe_fake.pay(session.id)
    completed = stripe_fake.events_of("checkout.session.completed")[0]
    assert completed["id"] in stripe_fake.standin.undelivered
    assert stripe_receiver.received == []

    stripe_receiver.status = 200
    answer = stripe_fake.control(f"events/{completed['id']}/redeliver")

    assert answer.json() == {"id": completed["id"], "delivered": True}
    assert [e.id for e in stripe_receiver.received] == [completed["id"]]
    assert completed["id"] not in stripe_fake.standin.undelivered


def test_events_are_listed_newest_first_and_read_by_id(
    stripe_fake: FakeStripe, stripe_client: stripe.StripeClient
) -> None:
    session = credit_session(stripe_client, stripe_client.v1.customers.create(params={}).id)
    stripe_fake.pay(session.id)
    listed = stripe_client.v1.events.list(params={"limit": 2})
    assert [e.id for e in listed.data] == [e["id"] for e in reversed(stripe_fake.events)][:2]
    assert listed.has_more is True
    only = stripe_client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.type for e in only.data] == ["checkout.session.completed"]
    event = stripe_client.v1.events.retrieve(only.data[0].id)
    assert event.data.object.id == session.id


def test_requests_need_a_test_mode_secret_key(stripe_fake: FakeStripe) -> None:
    for key in ("sk_live_123456789", "pk_test_123456789"):
        stranger = stripe.StripeClient(key, base_addresses={"api": stripe_fake.api_base})
        with pytest.raises(stripe.AuthenticationError):
            stranger.v1.customers.create(params={})
    anonymous = httpx.post(f"{stripe_fake.api_base}/v1/customers")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"


def test_bad_parameters_are_stripe_400s_naming_the_param(
    stripe_client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as no_items:
        stripe_client.v1.checkout.sessions.create(params={"mode": "payment"})
    assert no_items.value.param == "line_items"
    with pytest.raises(stripe.InvalidRequestError) as unserved:
        stripe_client.v1.payouts.list()
    assert unserved.value.http_status == 404
    assert "Unrecognized request URL (GET: /v1/payouts)" in str(unserved.value)
    with pytest.raises(stripe.InvalidRequestError) as small:
        stripe_client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert small.value.code == "amount_too_small"


def test_the_fixture_points_the_gateways_settings_at_the_fake(stripe_fake: FakeStripe) -> None:
    from gatewayz import config

    from_settings = stripe.StripeClient(
        config.require("stripe_secret_key"),
        base_addresses={"api": config.require("stripe_api_base")},
    )
    customer = from_settings.v1.customers.create(params={"email": "x@example.com"})
    assert stripe_fake.client().v1.customers.retrieve(customer.id).email == "x@example.com"
    assert config.require("stripe_webhook_secret") == stripe_fake.webhook_secret
