"""POST /v1/billing/checkout and /v1/billing/portal through the billing function's real
handler, against the Stripe fake driven by the real `stripe` client; the fake's events
reach the real webhooks function."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from tests import ledger
from tests.conftest import reset_caches
from tests.factories import new_key, new_member, new_owner
from tests.fakes.stripe import to_webhooks_function
from tests.functions import stripe_webhooks as hooks
from tests.functions.events import event, invoke, json_body

if TYPE_CHECKING:
    from tests.fakes.stripe import FakeStripe

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def fake(stripe_fake: FakeStripe) -> FakeStripe:
    stripe_fake.deliver_to(to_webhooks_function)
    return stripe_fake


def call(path: str, secret: str, body: Any = None) -> dict[str, Any]:
    """POST `body` (JSON) to a billing route with the key."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    raw = body if isinstance(body, str) else json.dumps(body or {})
    return invoke(
        "billing", event("billing", path=path, httpMethod="POST", body=raw, headers=headers)
    )


def checkout(secret: str, body: Any) -> dict[str, Any]:
    return call("/v1/billing/checkout", secret, body)


def payments_of(account_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT kind, amount_cents, credit_nanos, status, stripe_checkout_session_id
             FROM payments WHERE account_id = %s ORDER BY created_at""",
        (account_id,),
    ).fetchall()


def test_buying_credit_end_to_end_grants_what_the_server_decided(fake: FakeStripe) -> None:
    owner = new_owner()
    key = new_key(owner)
    result = checkout(key.secret, {"amount": 25.5})
    assert result["statusCode"] == 201, result["body"]
    data = json_body(result)["data"]
    assert data["id"].startswith("cs_")
    assert data["url"].startswith("http")
    assert payments_of(owner.account_id) == [
        ("credit_purchase", 2550, 25_500_000_000, "pending", data["id"])
    ]
    assert fake.pay(data["id"]).status_code == 200
    assert hooks.balance(owner.account_id) == 25_500_000_000
    row = db.execute(
        "SELECT stripe_customer_id, stripe_payment_method_id FROM accounts WHERE id = %s",
        (owner.account_id,),
    ).fetchone()
    assert row is not None
    assert row[0].startswith("cus_")
    assert row[1].startswith("pm_")
    # The next checkout reuses the customer.
    again = json_body(checkout(key.secret, {"amount": 5}))["data"]
    assert fake.client().v1.checkout.sessions.retrieve(again["id"]).customer == row[0]
    assert hooks.emails(owner.account_id, "payment_received") == 1
    receipt = hooks.rendered(owner.account_id, "payment_received")
    assert "$25.50" in receipt
    assert "balance is now $25.50" in receipt
    with db.connect() as conn:
        assert ledger.invariant_holds(conn, owner.account_id)


def test_a_pack_grants_its_credit(fake: FakeStripe) -> None:
    # A seeded pack that grants more than it costs.
    pack = db.execute(
        """SELECT id, credit_nanos FROM credit_packs
            WHERE is_active AND credit_nanos > price_cents * 10000000 LIMIT 1"""
    ).fetchone()
    assert pack is not None
    owner = new_owner()
    key = new_key(owner)
    data = json_body(checkout(key.secret, {"pack": pack[0]}))["data"]
    fake.pay(data["id"])
    assert hooks.balance(owner.account_id) == pack[1]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": 4.99}, "amount"),
        ({"amount": 1000.01}, "amount"),
        ({"amount": 10.005}, "amount"),
        ({"amount": "25"}, "amount"),
        ({"amount": True}, "amount"),
        ({}, "amount"),
        ({"amount": 10, "pack": "x"}, "pack"),
        ({"pack": "no-such-pack"}, "pack"),
        ({"plan": "payg"}, "plan"),
        ({"amount": 10, "credit": 1000}, "credit"),
        ({"amount": 10, "success_url": "javascript:alert(1)"}, "success_url"),
        ({"amount": 10, "cancel_url": "ftp://example.com"}, "cancel_url"),
    ],
)
def test_bad_orders_are_400s_that_never_reach_stripe(
    fake: FakeStripe, body: dict[str, Any], param: str
) -> None:
    owner = new_owner()
    result = checkout(new_key(owner).secret, body)
    assert result["statusCode"] == 400, result["body"]
    assert json_body(result)["error"]["param"] == param
    assert payments_of(owner.account_id) == []
    assert fake.events == []


def test_only_managers_with_billing_write_may_buy(fake: FakeStripe) -> None:
    owner = new_owner()
    member = new_member(owner, "member")
    as_member = checkout(new_key(member, scopes=["billing:write"]).secret, {"amount": 10})
    assert (as_member["statusCode"], hooks.error_code(as_member)) == (403, "role_denied")
    read_only = checkout(new_key(owner, scopes=["billing:read"]).secret, {"amount": 10})
    assert (read_only["statusCode"], hooks.error_code(read_only)) == (403, "scope_denied")
    admin = new_member(owner, "admin")
    assert checkout(new_key(admin).secret, {"amount": 10})["statusCode"] == 201


def test_a_checkout_of_account_a_never_credits_account_b(fake: FakeStripe) -> None:
    a, b = new_owner(), new_owner()
    data = json_body(checkout(new_key(a).secret, {"amount": 10}))["data"]
    fake.pay(data["id"])
    # A forged delivery of A's session claiming B in its metadata credits A's row only.
    paid = fake.client().v1.checkout.sessions.retrieve(data["id"]).to_dict()
    paid["metadata"] = {"payment_id": data["payment_id"], "account_id": b.account_id}
    paid["client_reference_id"] = a.account_id
    body, headers = fake.signed(hooks.stripe_event("checkout.session.completed", paid))
    assert to_webhooks_function(body, headers) == 200
    assert (hooks.balance(a.account_id), hooks.balance(b.account_id)) == (10 * 10**9, 0)


def test_edited_metadata_or_amount_cannot_change_the_credit(fake: FakeStripe) -> None:
    owner = new_owner()
    victim = new_owner()
    data = json_body(checkout(new_key(owner).secret, {"amount": 10}))["data"]
    victim_payment, _ = hooks.checkout_payment(
        victim.account_id, cents=100_000, credit_nanos=10**14
    )
    fake.deliver_to(None)  # the real completion is held back
    fake.pay(data["id"])
    paid = fake.client().v1.checkout.sessions.retrieve(data["id"]).to_dict()
    forged = [
        paid | {"amount_total": 100_000},  # the amount edited
        paid | {"metadata": {"payment_id": victim_payment, "account_id": victim.account_id}},
        paid | {"id": "cs_test_not_ours", "metadata": {"payment_id": victim_payment}},
        paid | {"currency": "eur"},
    ]
    for session in forged:
        body, headers = fake.signed(hooks.stripe_event("checkout.session.completed", session))
        assert to_webhooks_function(body, headers) == 200
    # Only the row's own credit, for the genuine session, ever lands: the metadata edit
    # pays the owner's row (its session), never the victim's.
    assert hooks.balance(owner.account_id) == 10 * 10**9
    assert hooks.balance(victim.account_id) == 0
    assert hooks.state(victim_payment)["status"] == "pending"
    mismatches = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'payment.mismatch' AND account_id = %s",
        (owner.account_id,),
    ).fetchone()
    assert mismatches is not None
    assert mismatches[0] >= 1


def test_the_portal_needs_a_customer_first(fake: FakeStripe) -> None:
    owner = new_owner()
    key = new_key(owner)
    before = call("/v1/billing/portal", key.secret)
    assert (before["statusCode"], hooks.error_code(before)) == (404, "billing_not_set_up")
    checkout(key.secret, {"amount": 10})
    after = call("/v1/billing/portal", key.secret, {"return_url": "https://app.example.com/"})
    assert after["statusCode"] == 201, after["body"]
    assert json_body(after)["data"]["url"].startswith("http")
    other = call("/v1/billing/portal", new_key(new_owner()).secret)
    assert other["statusCode"] == 404  # another account never reaches this customer


def test_a_plan_checkout_subscribes_and_each_invoice_grants_the_month(fake: FakeStripe) -> None:
    price = fake.client().v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 2900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Dev"},
        }
    )
    db.execute("UPDATE plans SET stripe_price_id = %s WHERE id = 'dev'", (price.id,))
    owner = new_owner(plan_id="trial")
    trial = hooks.balance(owner.account_id)
    key = new_key(owner)
    data = json_body(checkout(key.secret, {"plan": "dev"}))["data"]
    fake.pay(data["id"])
    plan = db.execute("SELECT plan_id FROM accounts WHERE id = %s", (owner.account_id,)).fetchone()
    assert plan == ("dev",)
    assert hooks.balance(owner.account_id) == trial + 29 * 10**9
    again = checkout(key.secret, {"plan": "dev"})
    assert again["statusCode"] == 400  # one subscription: change it in the portal
    # A refund of the month takes its credit back.
    intent = db.execute(
        """SELECT stripe_payment_intent_id FROM payments
            WHERE account_id = %s AND kind = 'subscription' AND paid_at IS NOT NULL""",
        (owner.account_id,),
    ).fetchone()
    assert intent is not None
    fake.client().v1.refunds.create({"payment_intent": intent[0]})
    assert hooks.balance(owner.account_id) == trial
    with db.connect() as conn:
        assert ledger.invariant_holds(conn, owner.account_id)


def test_stripe_unreachable_is_a_502_and_unconfigured_a_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_key(new_owner())
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_unreachable")
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")
    reset_caches()
    down = checkout(key.secret, {"amount": 10})
    assert (down["statusCode"], hooks.error_code(down)) == (502, "upstream_error")
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    reset_caches()
    unset = checkout(key.secret, {"amount": 10})
    assert (unset["statusCode"], hooks.error_code(unset)) == (503, "missing_configuration")


def test_a_paid_session_whose_id_was_never_saved_still_grants_its_credit_once(
    fake: FakeStripe,
) -> None:
    # The process that opened the session stopped before saving its id on the row.
    owner = new_owner()
    data = json_body(checkout(new_key(owner).secret, {"amount": 10}))["data"]
    db.execute(
        "UPDATE payments SET stripe_checkout_session_id = NULL WHERE id = %s",
        (data["payment_id"],),
    )
    fake.pay(data["id"])
    paid = fake.client().v1.checkout.sessions.retrieve(data["id"]).to_dict()
    for _ in range(2):  # a redelivery finds the row by its session id now
        body, headers = fake.signed(hooks.stripe_event("checkout.session.completed", paid))
        assert to_webhooks_function(body, headers) == 200
    assert hooks.balance(owner.account_id) == 10 * 10**9
    assert hooks.state(data["payment_id"])["status"] == "succeeded"


def test_a_session_naming_a_row_that_has_another_session_grants_nothing(
    fake: FakeStripe,
) -> None:
    owner = new_owner()
    first = json_body(checkout(new_key(owner).secret, {"amount": 10}))["data"]
    fake.deliver_to(None)  # the genuine completion is held back
    fake.pay(first["id"])
    paid = fake.client().v1.checkout.sessions.retrieve(first["id"]).to_dict()
    # Another session claiming the row, and one claiming another account's row.
    other = new_owner()
    theirs = json_body(checkout(new_key(other).secret, {"amount": 10}))["data"]
    db.execute(
        "UPDATE payments SET stripe_checkout_session_id = NULL WHERE id = %s",
        (theirs["payment_id"],),
    )
    forged = [
        paid | {"id": "cs_test_second"},
        paid | {"id": "cs_test_third",
                "metadata": {"payment_id": theirs["payment_id"], "account_id": owner.account_id}},
    ]  # fmt: skip
    for session in forged:
        body, headers = fake.signed(hooks.stripe_event("checkout.session.completed", session))
        assert to_webhooks_function(body, headers) == 200
    assert hooks.balance(owner.account_id) == 0
    assert hooks.balance(other.account_id) == 0
    assert hooks.state(theirs["payment_id"])["status"] == "pending"
