"""Subscriptions through POST /webhooks/stripe: the row and the account's plan follow the
newest state whatever order events come in, and each paid invoice grants the plan's
monthly credit once."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import pytest

from gatewayz import db
from tests import ledger
from tests.factories import new_owner
from tests.functions import stripe_webhooks as hooks

pytestmark = pytest.mark.usefixtures("database_url")
PRICE = "price_test_dev_monthly"


@pytest.fixture(autouse=True)
def _stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks.configure(monkeypatch)
    db.execute("UPDATE plans SET stripe_price_id = %s WHERE id = 'dev'", (PRICE,))


def _customer(account_id: str) -> str:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    db.execute("UPDATE accounts SET stripe_customer_id = %s WHERE id = %s", (customer, account_id))
    return customer


def _subscription(sub_id: str, customer: str, status: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    item = {
        "id": f"si_{sub_id[4:]}",
        "object": "subscription_item",
        "price": {"id": PRICE, "object": "price", "recurring": {"interval": "month"}},
        "current_period_start": now,
        "current_period_end": now + 30 * 86400,
        "quantity": 1,
    }
    return {
        "id": sub_id, "object": "subscription", "customer": customer, "status": status,
        "items": {"object": "list", "data": [item]}, "cancel_at_period_end": False,
        "canceled_at": None, "metadata": {},
    } | extra  # fmt: skip


def _invoice(invoice_id: str, customer: str, sub_id: str, amount: int = 2900) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "amount_paid": amount,
        "currency": "usd",
        "status": "paid",
        "billing_reason": "subscription_cycle",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id},
        },
        "lines": {"data": [{"pricing": {"price_details": {"price": PRICE}}}]},
    }


def _plan(account_id: str) -> tuple[str, str | None]:
    row = db.execute(
        """SELECT a.plan_id, s.status FROM accounts a
             LEFT JOIN subscriptions s ON s.account_id = a.id WHERE a.id = %s""",
        (account_id,),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def _ok(account_id: str) -> None:
    with db.connect() as conn:
        assert ledger.invariant_holds(conn, account_id)


def test_events_in_any_order_five_times_each_leave_the_newest_state() -> None:
    owner = new_owner()
    customer = _customer(owner.account_id)
    sub = f"sub_{uuid.uuid4().hex[:14]}"
    t = int(time.time()) - 100
    evts = [
        hooks.stripe_event(
            "customer.subscription.created", _subscription(sub, customer, "incomplete"), created=t
        ),
        hooks.stripe_event(
            "customer.subscription.updated", _subscription(sub, customer, "active"), created=t + 5
        ),
        hooks.stripe_event("invoice.paid", _invoice("in_first", customer, sub), created=t + 5),
    ]
    deliveries = [e for e in evts for _ in range(5)]
    random.Random(3).shuffle(deliveries)
    deliveries.sort(key=lambda e: e["type"] == "customer.subscription.created")  # created last
    for evt in deliveries:
        hooks.deliver(evt)
    assert _plan(owner.account_id) == ("dev", "active")
    assert hooks.balance(owner.account_id) == 29 * 10**9
    assert hooks.emails(owner.account_id, "payment_received") == 1
    _ok(owner.account_id)


def test_each_paid_invoice_grants_the_month_once_and_cancellation_ends_the_plan() -> None:
    owner = new_owner(plan_id="trial")
    trial_credit = hooks.balance(owner.account_id)
    customer = _customer(owner.account_id)
    sub = f"sub_{uuid.uuid4().hex[:14]}"
    t = int(time.time()) - 1000
    created = _subscription(sub, customer, "active")
    hooks.deliver(hooks.stripe_event("customer.subscription.created", created, created=t))
    for invoice in ("in_month_1", "in_month_2", "in_month_1"):
        hooks.deliver(hooks.stripe_event("invoice.paid", _invoice(invoice, customer, sub)))
    assert hooks.balance(owner.account_id) == trial_credit + 2 * 29 * 10**9
    converted = db.execute(
        "SELECT trial_converted_at IS NOT NULL FROM accounts WHERE id = %s", (owner.account_id,)
    ).fetchone()
    assert converted == (True,)
    ending = _subscription(sub, customer, "active", cancel_at_period_end=True)
    hooks.deliver(hooks.stripe_event("customer.subscription.updated", ending, created=t + 10))
    assert _plan(owner.account_id) == ("dev", "active")  # until the period ends
    gone = _subscription(sub, customer, "canceled", canceled_at=t + 20)
    hooks.deliver(hooks.stripe_event("customer.subscription.deleted", gone, created=t + 20))
    # A late, older "active" never brings it back.
    hooks.deliver(hooks.stripe_event("customer.subscription.updated", ending, created=t + 15))
    assert _plan(owner.account_id) == ("payg", "canceled")  # it paid, so pay as you go
    _ok(owner.account_id)


def test_a_subscription_that_never_paid_falls_back_to_free() -> None:
    owner = new_owner()
    customer = _customer(owner.account_id)
    sub = f"sub_{uuid.uuid4().hex[:14]}"
    t = int(time.time()) - 100
    db.execute("UPDATE accounts SET plan_id = 'free' WHERE id = %s", (owner.account_id,))
    trialing = _subscription(sub, customer, "trialing")
    hooks.deliver(hooks.stripe_event("customer.subscription.created", trialing, created=t))
    assert _plan(owner.account_id) == ("dev", "trialing")
    hooks.deliver(hooks.stripe_event("invoice.paid", _invoice("in_zero", customer, sub, amount=0)))
    assert hooks.balance(owner.account_id) == 0  # nothing paid, nothing granted
    canceled = _subscription(sub, customer, "canceled")
    hooks.deliver(hooks.stripe_event("customer.subscription.deleted", canceled, created=t + 1))
    assert _plan(owner.account_id) == ("free", "canceled")


def test_a_failed_renewal_emails_once_per_invoice() -> None:
    owner = new_owner()
    customer = _customer(owner.account_id)
    for _ in range(3):  # Stripe's retries of the same invoice are new events
        failed = _invoice("in_failing", customer, "sub_x") | {"status": "open", "amount_paid": 0}
        hooks.deliver(hooks.stripe_event("invoice.payment_failed", failed))
    assert hooks.emails(owner.account_id, "payment_failed") == 1


def test_a_subscription_of_another_customer_or_price_changes_nothing() -> None:
    owner = new_owner()
    _customer(owner.account_id)
    sub = f"sub_{uuid.uuid4().hex[:14]}"
    theirs = _subscription(sub, "cus_not_ours", "active")
    hooks.deliver(hooks.stripe_event("customer.subscription.created", theirs))
    unknown = _subscription(sub, "cus_not_ours", "active")
    unknown["items"]["data"][0]["price"]["id"] = "price_unknown"
    hooks.deliver(hooks.stripe_event("customer.subscription.updated", unknown))
    assert _plan(owner.account_id) == ("payg", None)
    found = db.execute(
        "SELECT 1 FROM subscriptions WHERE stripe_subscription_id = %s", (sub,)
    ).fetchone()
    assert found is None
