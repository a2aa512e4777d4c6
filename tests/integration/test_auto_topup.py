"""The `auto_topup` job against the Stripe fake: one off-session PaymentIntent per crossing
of the threshold, whatever runs at once; a declined card is not tried again until the
balance recovers. The fake's events reach the real webhooks function."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db, jobs
from gatewayz.billing import auto_topup, credits
from gatewayz.dev.stripe_standin import catalog
from tests import ledger
from tests.factories import fund, new_owner
from tests.fakes.stripe import to_webhooks_function
from tests.functions import stripe_webhooks as hooks

if TYPE_CHECKING:
    from tests.fakes.stripe import FakeStripe

pytestmark = pytest.mark.usefixtures("database_url")
USD = 10**9


@pytest.fixture
def fake(stripe_fake: FakeStripe) -> FakeStripe:
    stripe_fake.deliver_to(to_webhooks_function)
    return stripe_fake


def saved_card_account(fake: FakeStripe, *, balance_usd: int, threshold_usd: int = 5) -> str:
    """An account whose Stripe customer has a saved card, `balance_usd` left, and auto
    top-up of $20 below `threshold_usd`."""
    owner = new_owner()
    client = fake.client()
    customer = client.v1.customers.create({"email": "topup@example.com"})
    # A card saved as a paid checkout saves it (the fake's own step for that).
    card = catalog.save_card(fake.standin.state, customer.id)
    db.execute(
        """UPDATE accounts SET stripe_customer_id = %s, stripe_payment_method_id = %s,
                  auto_topup_threshold_nanos = %s, auto_topup_amount_cents = 2000
            WHERE id = %s""",
        (customer.id, card["id"], threshold_usd * USD, owner.account_id),
    )
    if balance_usd:
        fund(owner.account_id, balance_usd * USD)
    return owner.account_id


def spend(account_id: str, usd: int) -> None:
    with db.transaction() as cur:
        credits.post(cur, account_id=account_id, kind="admin_debit", amount_nanos=-usd * USD)


def topups(account_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT status, granted_nanos, stripe_payment_intent_id IS NOT NULL FROM payments
            WHERE account_id = %s AND kind = 'auto_topup' ORDER BY created_at""",
        (account_id,),
    ).fetchall()


def intents_for(fake: FakeStripe, account_id: str) -> set[str]:
    return {
        e["data"]["object"]["id"]
        for e in fake.events
        if e["type"].startswith("payment_intent.")
        and e["data"]["object"]["metadata"].get("account_id") == account_id
    }


def armed(account_id: str) -> bool:
    row = db.execute(
        "SELECT auto_topup_armed FROM accounts WHERE id = %s", (account_id,)
    ).fetchone()
    assert row is not None
    return bool(row[0])


def test_two_concurrent_runs_make_one_payment_intent_and_one_grant(fake: FakeStripe) -> None:
    account = saved_card_account(fake, balance_usd=10)
    spend(account, 8)  # $2 left, below the $5 threshold
    start = threading.Barrier(2)
    reports: list[dict[str, Any]] = []

    def run() -> None:
        start.wait()
        reports.append(jobs.run({"job": "auto_topup"}))
        db.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["claimed"] for r in reports) >= 1
    assert len(intents_for(fake, account)) == 1
    assert topups(account) == [("succeeded", 20 * USD, True)]
    assert hooks.balance(account) == 22 * USD
    assert hooks.emails(account, "payment_received") == 1
    # The balance is back above the threshold: armed again for the next crossing.
    jobs.run({"job": "auto_topup"})
    assert armed(account)
    assert len(topups(account)) == 1
    spend(account, 20)
    jobs.run({"job": "auto_topup"})
    assert hooks.balance(account) == 22 * USD
    assert len(topups(account)) == 2
    with db.connect() as conn:
        assert ledger.invariant_holds(conn, account)


def test_a_declined_card_fails_once_with_an_email_and_waits_for_recovery(fake: FakeStripe) -> None:
    account = saved_card_account(fake, balance_usd=3)
    customer = db.execute(
        "SELECT stripe_customer_id FROM accounts WHERE id = %s", (account,)
    ).fetchone()
    assert customer is not None
    assert fake.control(f"customers/{customer[0]}/decline").status_code == 200
    assert jobs.run({"job": "auto_topup"})["failed"] >= 1
    assert topups(account) == [("failed", 0, True)]
    assert hooks.emails(account, "payment_failed") == 1
    for _ in range(2):  # not retried while the balance stays low
        jobs.run({"job": "auto_topup"})
    assert len(topups(account)) == 1
    assert not armed(account)
    fund(account, 10 * USD)  # e.g. a checkout: back above the threshold
    jobs.run({"job": "auto_topup"})
    assert armed(account)
    assert len(topups(account)) == 1
    assert hooks.balance(account) == 13 * USD


def test_a_claim_left_by_a_crashed_run_is_charged_once_with_the_same_key(
    fake: FakeStripe,
) -> None:
    account = saved_card_account(fake, balance_usd=1)
    auto_topup.claim()  # a run that claimed, then died before calling Stripe
    assert topups(account) == [("pending", 0, False)]
    row = db.execute(
        """SELECT p.id, p.amount_cents, a.stripe_customer_id, a.stripe_payment_method_id
             FROM payments p JOIN accounts a ON a.id = p.account_id
            WHERE p.account_id = %s AND p.kind = 'auto_topup'""",
        (account,),
    ).fetchone()
    assert row is not None
    # Two later runs that both found it unsent send the same idempotency key.
    args = (str(row[0]), account, int(row[1]), "usd", row[2], row[3])
    assert [auto_topup.charge(*args), auto_topup.charge(*args)] == ["succeeded"] * 2
    assert len(intents_for(fake, account)) == 1
    assert topups(account) == [("succeeded", 20 * USD, True)]
    assert hooks.balance(account) == 21 * USD


def test_accounts_without_a_saved_card_or_settings_are_left_alone(fake: FakeStripe) -> None:
    owner = new_owner()
    db.execute(
        """UPDATE accounts SET auto_topup_threshold_nanos = %s, auto_topup_amount_cents = 1000
            WHERE id = %s""",
        (5 * USD, owner.account_id),
    )
    jobs.run({"job": "auto_topup"})
    assert topups(owner.account_id) == []
    assert armed(owner.account_id)
    assert intents_for(fake, owner.account_id) == set()
