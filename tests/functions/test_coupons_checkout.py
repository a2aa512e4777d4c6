"""A percent coupon through the Stripe checkout: redeemed through the coupons function,
applied by `POST /v1/billing/checkout` (the billing function), charged by the Stripe fake
driven by the real `stripe` client, granted by the real webhooks function. Stripe charges
the discounted price, the webhook grants the full credit once, and the coupon is used up
only by a paid checkout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.billing import money
from tests import ledger
from tests.factories import new_key, new_owner
from tests.fakes.stripe import to_webhooks_function
from tests.functions import stripe_webhooks as hooks
from tests.functions.billing_api import call as billing
from tests.functions.coupons_api import balance, call, create, redeem
from tests.functions.operators import operator_key
from tests.overlap import run_at_once

if TYPE_CHECKING:
    import psycopg

    from tests.fakes.stripe import FakeStripe

pytestmark = pytest.mark.usefixtures("database_url")
USD = money.NANOS_PER_USD


@pytest.fixture
def fake(stripe_fake: FakeStripe) -> FakeStripe:
    stripe_fake.deliver_to(to_webhooks_function)
    return stripe_fake


@pytest.fixture
def admin() -> str:
    return operator_key()[1].secret


def attached(admin: str, secret: str, percent: int) -> dict[str, Any]:
    """A new percent coupon, redeemed with the key: the coupon."""
    coupon = create(admin, kind="percent", percent_off=percent)
    done = redeem(secret, coupon["code"])
    assert done.status == 201, done.raw
    return coupon


def buy(secret: str, body: dict[str, Any]) -> dict[str, Any]:
    result = billing("POST", "/v1/billing/checkout", secret, body)
    assert result.status == 201, result.raw
    data: dict[str, Any] = result.body["data"]
    return data


def statuses(account_id: str) -> list[tuple[Any, ...]]:
    """(status, payment_id) of the account's redemptions, oldest first."""
    return db.execute(
        """SELECT status, payment_id::text FROM coupon_redemptions
            WHERE account_id = %s ORDER BY created_at""",
        (account_id,),
    ).fetchall()


def test_discounted_charge_full_credit_once_coupon_consumed(
    fake: FakeStripe, admin: str, conn: psycopg.Connection
) -> None:
    owner = new_owner()
    key = new_key(owner)
    coupon = attached(admin, key.secret, 20)
    data = buy(key.secret, {"amount": 50})
    assert data["coupon"] == {"code": coupon["code"], "percent_off": 20, "discount": 10.0}
    session = fake.client().v1.checkout.sessions.retrieve(data["id"])
    assert session.amount_total == 4000
    row = db.execute(
        "SELECT amount_cents, discount_cents, coupon_id::text FROM payments WHERE id = %s",
        (data["payment_id"],),
    ).fetchone()
    assert row == (5000, 1000, coupon["id"])
    assert statuses(owner.account_id) == [("attached", data["payment_id"])]
    assert fake.pay(data["id"]).status_code == 200
    assert balance(owner.account_id) == 50 * USD
    assert statuses(owner.account_id) == [("consumed", data["payment_id"])]
    # Replays, the same delivery and a new event for the same session, grant nothing more.
    completed = fake.events_of("checkout.session.completed")[-1]
    assert to_webhooks_function(*fake.signed(completed)) == 200
    fresh = hooks.stripe_event("checkout.session.completed", completed["data"]["object"])
    assert to_webhooks_function(*fake.signed(fresh)) == 200
    assert balance(owner.account_id) == 50 * USD
    assert statuses(owner.account_id) == [("consumed", data["payment_id"])]
    # The coupon is used up: the next checkout pays the full price.
    full = buy(key.secret, {"amount": 10})
    assert "coupon" not in full
    assert fake.client().v1.checkout.sessions.retrieve(full["id"]).amount_total == 1000
    listed = call("GET", "/v1/coupons/redemptions", key.secret).body["data"]
    assert [(r["status"], r["discount"], r["payment_id"]) for r in listed] == [
        ("consumed", 10.0, data["payment_id"])
    ]
    stats = call("GET", f"/admin/coupons/{coupon['id']}/analytics", admin).body["data"]
    assert (stats["discounts_used"], stats["discount_given"]) == (1, 10.0)
    assert stats["credit_purchased_with_discount"] == 50.0
    consumed = conn.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'coupon.consume' AND target_id = %s",
        (coupon["id"],),
    ).fetchone()
    assert consumed == (1,)
    assert ledger.invariant_holds(conn, owner.account_id)


def test_an_expired_or_failed_checkout_leaves_the_coupon_for_the_next(
    fake: FakeStripe, admin: str
) -> None:
    owner = new_owner()
    key = new_key(owner)
    attached(admin, key.secret, 50)
    first = buy(key.secret, {"amount": 20})
    fake.client().v1.checkout.sessions.expire(first["id"])
    assert hooks.state(first["payment_id"])["status"] == "expired"
    assert statuses(owner.account_id) == [("attached", first["payment_id"])]
    # A delayed payment method that fails in the end (Stripe's async failure event).
    second = buy(key.secret, {"amount": 30})
    assert second["coupon"]["discount"] == 15.0
    session = fake.client().v1.checkout.sessions.retrieve(second["id"]).to_dict()
    failed = hooks.stripe_event("checkout.session.async_payment_failed", session)
    assert to_webhooks_function(*fake.signed(failed)) == 200
    assert hooks.state(second["payment_id"])["status"] == "failed"
    assert statuses(owner.account_id) == [("attached", second["payment_id"])]
    third = buy(key.secret, {"amount": 30})
    assert fake.client().v1.checkout.sessions.retrieve(third["id"]).amount_total == 1500
    fake.pay(third["id"])
    assert balance(owner.account_id) == 30 * USD
    assert statuses(owner.account_id) == [("consumed", third["payment_id"])]


def test_a_new_checkout_takes_the_coupon_from_an_unpaid_one(fake: FakeStripe, admin: str) -> None:
    owner = new_owner()
    key = new_key(owner)
    attached(admin, key.secret, 10)
    abandoned = buy(key.secret, {"amount": 100})
    taken = buy(key.secret, {"amount": 40})
    # The abandoned session can no longer be paid at the discount.
    assert fake.client().v1.checkout.sessions.retrieve(abandoned["id"]).status == "expired"
    assert hooks.state(abandoned["payment_id"])["status"] == "expired"
    assert fake.pay(abandoned["id"]).status_code == 400
    assert taken["coupon"]["discount"] == 4.0
    fake.pay(taken["id"])
    assert balance(owner.account_id) == 40 * USD
    assert statuses(owner.account_id) == [("consumed", taken["payment_id"])]


def test_a_pack_is_discounted_and_a_refund_takes_its_credit_back(
    fake: FakeStripe, admin: str, conn: psycopg.Connection
) -> None:
    pack = db.execute(
        "SELECT id, price_cents, credit_nanos FROM credit_packs WHERE is_active LIMIT 1"
    ).fetchone()
    assert pack is not None
    owner = new_owner()
    key = new_key(owner)
    attached(admin, key.secret, 25)
    data = buy(key.secret, {"pack": pack[0]})
    charged = pack[1] - pack[1] * 25 // 100
    assert fake.client().v1.checkout.sessions.retrieve(data["id"]).amount_total == charged
    fake.pay(data["id"])
    assert balance(owner.account_id) == pack[2]
    intent = hooks.state(data["payment_id"])["intent"]
    fake.client().v1.refunds.create({"payment_intent": intent})
    assert balance(owner.account_id) == 0
    assert ledger.invariant_holds(conn, owner.account_id)


def test_checkouts_racing_for_one_coupon_discount_one_charge(fake: FakeStripe, admin: str) -> None:
    owner = new_owner()
    key = new_key(owner)
    attached(admin, key.secret, 50)
    made = run_at_once(lambda: buy(key.secret, {"amount": 20}), 4)
    assert len(made) == 4
    # Every session still payable: at most one of them at the discount.
    payable = [m for m in made if fake.pay(m["id"]).status_code == 200]
    charged = sorted(
        int(db.execute("SELECT amount_cents - discount_cents FROM payments WHERE id = %s",
                       (m["payment_id"],)).fetchone()[0])  # type: ignore[index]
        for m in payable
    )  # fmt: skip
    assert charged.count(1000) <= 1
    assert all(cents in (1000, 2000) for cents in charged)
    assert balance(owner.account_id) == 20 * USD * len(payable)
    consumed = [row for row in statuses(owner.account_id) if row[0] == "consumed"]
    assert len(consumed) == (1 if 1000 in charged else 0)


def test_a_coupon_ended_after_attaching_is_honoured_and_never_below_stripes_minimum(
    fake: FakeStripe, admin: str
) -> None:
    owner = new_owner()
    key = new_key(owner)
    coupon = attached(admin, key.secret, 100)
    path = f"/admin/coupons/{coupon['id']}"
    assert call("PATCH", path, admin, {"valid_until": "2000-01-01T00:00:00Z"}).status == 200
    assert call("DELETE", path, admin).status == 200
    data = buy(key.secret, {"amount": 7})
    # 100% off still charges Stripe's smallest amount; the full credit is granted once.
    assert data["coupon"]["discount"] == 6.5
    assert fake.client().v1.checkout.sessions.retrieve(data["id"]).amount_total == 50
    assert fake.pay(data["id"]).status_code == 200
    assert balance(owner.account_id) == 7 * USD
    assert statuses(owner.account_id) == [("consumed", data["payment_id"])]
    # Refunded in full: all of the credit goes back, and the coupon stays used.
    intent = hooks.state(data["payment_id"])["intent"]
    fake.client().v1.refunds.create({"payment_intent": intent})
    assert balance(owner.account_id) == 0
    assert statuses(owner.account_id) == [("consumed", data["payment_id"])]
    assert "coupon" not in buy(key.secret, {"amount": 7})
    with db.connect() as conn:
        assert ledger.invariant_holds(conn, owner.account_id)
