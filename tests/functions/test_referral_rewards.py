"""Referral rewards through the real purchase path: checkouts made by the billing
function, paid on the Stripe fake, whose signed events reach the webhooks function.
Farming attempts earn nothing; a real referral pays both sides exactly once."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from gatewayz import db
from tests import ledger
from tests.conftest import reset_caches
from tests.fakes.stripe import to_webhooks_function
from tests.functions import referrals_api as api
from tests.functions import stripe_webhooks as hooks

if TYPE_CHECKING:
    from tests.fakes.stripe import FakeStripe

pytestmark = pytest.mark.usefixtures("database_url")
REFERRER, REFERRED = api.REFERRER_REWARD, api.REFERRED_REWARD


@pytest.fixture
def fake(stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    for name, value in api.SETTINGS.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    stripe_fake.deliver_to(to_webhooks_function)
    return stripe_fake


@pytest.fixture(autouse=True)
def _money_adds_up() -> object:
    yield
    with db.connect() as conn:
        assert ledger.broken_accounts(conn) == []


def capped_at_two(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> tuple[api.Person, list[api.Person]]:
    """A referrer allowed two rewards (`REFERRAL_MAX_REWARDS=2`) and `count` users who
    applied their code."""
    monkeypatch.setenv("REFERRAL_MAX_REWARDS", "2")
    reset_caches()
    referrer = api.person()
    return referrer, [api.referred_by(referrer) for _ in range(count)]


def deliver_at_once(deliveries: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    """Deliver signed events to the webhooks function, each from its own thread (its
    own connection), all released together; their statuses."""
    start = threading.Barrier(len(deliveries))
    statuses: list[int] = []

    def deliver(body: bytes, headers: dict[str, str]) -> None:
        start.wait()
        statuses.append(to_webhooks_function(body, headers))
        db.close()

    threads = [threading.Thread(target=deliver, args=d) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_referral_pays_both_sides_once_after_the_purchase(fake: FakeStripe) -> None:
    referrer = api.person()
    referred = api.referred_by(referrer)
    api.buy(fake, referred, 10)
    assert api.rewards(referrer.account_id) == [REFERRER]
    assert api.rewards(referred.account_id) == [REFERRED]
    assert api.referral(referred) == ("rewarded", None, REFERRER, REFERRED)
    assert hooks.balance(referred.account_id) == 10 * 10**9 + REFERRED
    assert hooks.balance(referrer.account_id) == REFERRER
    # Every event delivered again, and a second purchase: nothing more.
    for evt in list(fake.events):
        fake.control(f"events/{evt['id']}/redeliver")
    api.buy(fake, referred, 20)
    assert api.rewards(referrer.account_id) == [REFERRER]
    assert api.rewards(referred.account_id) == [REFERRED]
    stats = api.overview(referrer.key.secret).body
    assert (stats["sign_ups"], stats["conversions"], stats["rewards_earned"]) == (1, 1, 3)
    assert stats["data"][0]["status"] == "rewarded"
    audit = db.execute(
        """SELECT account_id::text FROM audit_log WHERE action = 'referral.reward'
            ORDER BY account_id""",
    ).fetchall()
    assert sorted(a for (a,) in audit if a in (referrer.account_id, referred.account_id)) == (
        sorted([referrer.account_id, referred.account_id])
    )


def test_concurrent_deliveries_of_the_paid_events_reward_once(fake: FakeStripe) -> None:
    referrer = api.person()
    referred = api.referred_by(referrer)
    fake.deliver_to(None)  # only recorded: this test delivers them
    api.buy(fake, referred, 15)
    paid = fake.events_of("checkout.session.completed")[-1]
    # The same event six times, and the same session as a second event type, at once.
    second = {**paid, "id": paid["id"] + "x", "type": "checkout.session.async_payment_succeeded"}
    deliveries = [fake.signed(paid) for _ in range(6)] + [fake.signed(second) for _ in range(2)]
    assert deliver_at_once(deliveries) == [200] * len(deliveries)
    assert api.rewards(referrer.account_id) == [REFERRER]
    assert api.rewards(referred.account_id) == [REFERRED]
    assert hooks.balance(referred.account_id) == 15 * 10**9 + REFERRED


def test_a_checkout_created_but_not_paid_rewards_nothing(fake: FakeStripe) -> None:
    referrer = api.person()
    referred = api.referred_by(referrer)
    reply = api.keys_api.call(
        "POST", "/v1/billing/checkout", referred.key.secret, {"amount": 50}, group="billing"
    )
    assert reply.status == 201
    declined = fake.pay(reply.body["data"]["id"], card="decline")
    assert declined.status_code == 402
    assert api.referral(referred) == ("pending", None, 0, 0)
    assert api.rewards(referrer.account_id) == api.rewards(referred.account_id) == []


def test_a_purchase_below_the_minimum_leaves_it_pending(fake: FakeStripe) -> None:
    referrer = api.person()
    referred = api.referred_by(referrer)
    api.buy(fake, referred, 9.99)
    assert api.referral(referred) == ("pending", None, 0, 0)
    assert api.rewards(referrer.account_id) == []
    # The first purchase that reaches the minimum decides it.
    api.buy(fake, referred, 10)
    assert api.referral(referred)[0] == "rewarded"


def test_the_same_card_as_the_referrers_voids_it(fake: FakeStripe) -> None:
    referrer = api.person()
    api.buy(fake, referrer, 5, card_number="4242424242424242")
    referred = api.referred_by(referrer)
    api.buy(fake, referred, 25, card_number="4242424242424242")
    assert api.referral(referred) == ("void", "same_card", 0, 0)
    assert api.rewards(referrer.account_id) == api.rewards(referred.account_id) == []
    assert hooks.balance(referred.account_id) == 25 * 10**9  # the purchase itself stands
    listed = api.overview(referrer.key.secret).body["data"][0]
    assert (listed["status"], listed["void_reason"]) == ("void", "same_card")


def test_a_different_card_is_not_the_referrers(fake: FakeStripe) -> None:
    referrer = api.person()
    api.buy(fake, referrer, 5, card_number="4242424242424242")
    referred = api.referred_by(referrer)
    api.buy(fake, referred, 25, card_number="5555555555554444")
    assert api.referral(referred)[0] == "rewarded"


def test_the_referrers_stripe_customer_voids_it(fake: FakeStripe) -> None:
    referrer = api.person()
    api.buy(fake, referrer, 5)
    row = db.execute(
        "SELECT stripe_customer_id FROM accounts WHERE id = %s", (referrer.account_id,)
    ).fetchone()
    assert row is not None
    assert row[0]
    referred = api.referred_by(referrer)
    # Stripe reports the referred account's paid session as the referrer's customer.
    payment, session_id = hooks.checkout_payment(
        referred.account_id, cents=2000, credit_nanos=20 * 10**9
    )
    paid = hooks.session(session_id, referred.account_id, payment, amount=2000)
    paid["customer"] = row[0]
    body, headers = fake.signed(hooks.stripe_event("checkout.session.completed", paid))
    assert to_webhooks_function(body, headers) == 200
    assert api.referral(referred) == ("void", "same_stripe_customer", 0, 0)
    assert api.rewards(referrer.account_id) == []


def test_a_referrer_over_the_count_cap_earns_nothing_more(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    referrer, referred = capped_at_two(monkeypatch, 3)
    for buyer in referred:
        api.buy(fake, buyer, 10)
    assert [api.referral(p)[:2] for p in referred] == [
        ("rewarded", None),
        ("rewarded", None),
        ("void", "referrer_cap_count"),
    ]
    assert api.rewards(referrer.account_id) == [REFERRER, REFERRER]
    assert api.rewards(referred[2].account_id) == []


def test_a_referrer_over_the_total_cap_earns_nothing_more(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRAL_MAX_REWARD_USD", "5")  # one $3 reward fits, two do not
    reset_caches()
    referrer = api.person()
    first, second = api.referred_by(referrer), api.referred_by(referrer)
    api.buy(fake, first, 10)
    api.buy(fake, second, 10)
    assert api.referral(first)[0] == "rewarded"
    assert api.referral(second)[:2] == ("void", "referrer_cap_total")
    assert api.rewards(referrer.account_id) == [REFERRER]


def _rewarded(fake: FakeStripe, usd: int) -> tuple[api.Person, api.Person, str]:
    """A referrer, the user they referred who bought `usd`, and that purchase's intent."""
    referrer = api.person()
    referred = api.referred_by(referrer)
    session_id = api.buy(fake, referred, usd)
    intent = fake.client().v1.checkout.sessions.retrieve(session_id).payment_intent
    assert isinstance(intent, str)
    assert api.referral(referred)[0] == "rewarded"
    return referrer, referred, intent


def test_a_refund_in_full_takes_both_rewards_back(fake: FakeStripe) -> None:
    referrer, referred, intent = _rewarded(fake, 10)
    fake.client().v1.refunds.create(params={"payment_intent": intent})
    assert api.referral(referred)[0] == "reversed"
    assert hooks.balance(referrer.account_id) == 0
    assert hooks.balance(referred.account_id) == 0
    for evt in fake.events_of("charge.refunded"):
        fake.control(f"events/{evt['id']}/redeliver")
    assert hooks.balance(referrer.account_id) == 0
    stats = api.overview(referrer.key.secret).body
    assert (stats["conversions"], stats["rewards_earned"]) == (0, 0)


def _paid_with_discount(buyer: api.Person, fake: FakeStripe, cents: int, off: int) -> None:
    """A checkout of `cents` with a coupon taking `off`, paid (Stripe charged the rest)."""
    payment, session_id = hooks.checkout_payment(
        buyer.account_id, cents=cents, credit_nanos=cents * 10**7
    )
    db.execute("UPDATE payments SET discount_cents = %s WHERE id = %s", (off, payment))
    paid = hooks.session(session_id, buyer.account_id, payment, amount=cents - off)
    body, headers = fake.signed(hooks.stripe_event("checkout.session.completed", paid))
    assert to_webhooks_function(body, headers) == 200


def test_the_minimum_counts_what_was_charged_after_a_discount(fake: FakeStripe) -> None:
    referrer = api.person()
    referred = api.referred_by(referrer)
    _paid_with_discount(referred, fake, 1500, 600)  # $15 of credit for $9
    assert api.referral(referred) == ("pending", None, 0, 0)
    _paid_with_discount(referred, fake, 2000, 1000)  # $20 of credit for $10
    assert api.referral(referred)[0] == "rewarded"
    assert api.rewards(referred.account_id) == [REFERRED]


def test_users_who_came_to_share_an_account_are_not_rewarded(fake: FakeStripe) -> None:
    referrer = api.person()
    referred = api.referred_by(referrer)
    db.execute(
        "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'member')",
        (referrer.account_id, referred.owner.user_id),
    )
    api.buy(fake, referred, 10)
    assert api.referral(referred) == ("void", "same_account", 0, 0)
    assert api.rewards(referrer.account_id) == []


def test_a_partial_refund_keeps_the_rewards_and_a_dispute_takes_them(fake: FakeStripe) -> None:
    referrer, referred, intent = _rewarded(fake, 20)
    fake.client().v1.refunds.create(params={"payment_intent": intent, "amount": 500})
    assert api.referral(referred)[0] == "rewarded"
    assert hooks.balance(referrer.account_id) == REFERRER
    charge = fake.client().v1.payment_intents.retrieve(intent).latest_charge
    assert isinstance(charge, str)
    assert fake.control(f"charges/{charge}/dispute", amount="1500").status_code == 200
    assert api.referral(referred)[0] == "reversed"
    assert hooks.balance(referrer.account_id) == 0
    taken = db.execute(
        """SELECT kind, amount_nanos FROM credit_transactions
            WHERE account_id = %s AND external_ref LIKE 'referral:%%:reversed'""",
        (referrer.account_id,),
    ).fetchall()
    assert taken == [("dispute", -REFERRER)]


def test_referred_purchases_settling_at_once_respect_the_referrers_caps(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    referrer, referred = capped_at_two(monkeypatch, 5)
    fake.deliver_to(None)  # only recorded: this test delivers them, all at once
    for buyer in referred:
        api.buy(fake, buyer, 10)
    paid = fake.events_of("checkout.session.completed")[-len(referred) :]
    deliveries = [fake.signed(evt) for evt in paid]
    assert deliver_at_once(deliveries) == [200] * len(deliveries)
    assert api.rewards(referrer.account_id) == [REFERRER, REFERRER]
    decided = sorted(api.referral(p)[:2] for p in referred)
    assert decided == [("rewarded", None)] * 2 + [("void", "referrer_cap_count")] * 3
    assert sum(len(api.rewards(p.account_id)) for p in referred) == 2
