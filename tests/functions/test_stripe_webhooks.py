"""POST /webhooks/stripe: signed events, each taking effect once, in any order, through the
webhooks function's real handler (checkout payments, refunds, disputes)."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid

import pytest

from gatewayz import db
from tests import ledger
from tests.conftest import reset_caches
from tests.factories import new_key, new_owner
from tests.functions import stripe_webhooks as hooks
from tests.functions.events import event, invoke, json_body

pytestmark = pytest.mark.usefixtures("database_url")
CREDIT = 25_000_000_000  # $25 of credit for 2,500 cents


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks.configure(monkeypatch)


def _account_ok(account_id: str) -> None:
    with db.connect() as conn:
        assert ledger.invariant_holds(conn, account_id)


def _stored(event_id: str) -> bool:
    return (
        db.execute("SELECT 1 FROM stripe_events WHERE id = %s", (event_id,)).fetchone() is not None
    )


def test_a_paid_checkout_delivered_five_times_credits_once() -> None:
    owner = new_owner()
    payment, session_id = hooks.checkout_payment(owner.account_id, cents=2500, credit_nanos=CREDIT)
    completed = hooks.stripe_event(
        "checkout.session.completed",
        hooks.session(session_id, owner.account_id, payment, amount=2500, intent="pi_once"),
    )
    for _ in range(5):
        hooks.deliver(completed)
    assert hooks.balance(owner.account_id) == CREDIT
    assert hooks.state(payment) | {"intent": None} == {
        "status": "succeeded", "granted": CREDIT, "reversed": 0, "refunded": 0,
        "disputed": 0, "paid": True, "intent": None,
    }  # fmt: skip
    assert hooks.state(payment)["intent"] == "pi_once"
    assert hooks.emails(owner.account_id, "payment_received") == 1
    _account_ok(owner.account_id)


def test_events_out_of_order_five_times_each_end_in_the_same_state() -> None:
    owner = new_owner()
    payment, session_id = hooks.checkout_payment(owner.account_id, cents=2000, credit_nanos=CREDIT)
    charge_id = f"ch_{uuid.uuid4().hex[:20]}"
    evts = [
        hooks.stripe_event("checkout.session.completed", hooks.session(
            session_id, owner.account_id, payment, amount=2000, intent="pi_ooo",
            payment_status="unpaid")),
        hooks.stripe_event("checkout.session.async_payment_succeeded", hooks.session(
            session_id, owner.account_id, payment, amount=2000, intent="pi_ooo")),
        hooks.stripe_event("charge.refunded", hooks.charge(
            "pi_ooo", amount=2000, refunded=500, charge_id=charge_id)),
        hooks.stripe_event("charge.refunded", hooks.charge(
            "pi_ooo", amount=2000, refunded=700, charge_id=charge_id)),
    ]  # fmt: skip
    # The refunds arrive before the payment is known, the larger one first; then the
    # session's events and more refunds, shuffled.
    rest = [e for e in (evts[0], evts[1], evts[2], evts[3]) for _ in range(4)]
    random.Random(8).shuffle(rest)
    deliveries = [evts[3], evts[2], *rest]
    for evt in deliveries:
        hooks.deliver(evt)
    # $7 of $20 refunded: 35% of the credit taken back (rounded up), the rest kept.
    taken = -(-CREDIT * 700 // 2000)
    assert hooks.balance(owner.account_id) == CREDIT - taken
    state = hooks.state(payment)
    assert (state["status"], state["granted"], state["reversed"], state["refunded"]) == (
        "partially_refunded",
        CREDIT,
        taken,
        700,
    )
    _account_ok(owner.account_id)


def test_a_refund_after_the_grant_takes_back_its_share_once_per_total() -> None:
    owner = new_owner()
    payment = hooks.paid_checkout(
        owner.account_id, cents=1000, credit_nanos=10**10, intent="pi_refund_after"
    )
    for refunded in (300, 300, 1000, 300):  # cumulative; a late smaller one changes nothing
        refund = hooks.charge(
            "pi_refund_after", amount=1000, refunded=refunded, charge_id="ch_refund_after"
        )
        hooks.deliver(hooks.stripe_event("charge.refunded", refund))
    assert hooks.balance(owner.account_id) == 0
    assert hooks.state(payment)["status"] == "refunded"
    assert hooks.emails(owner.account_id, "refund") == 2
    assert "We refunded $7.00" in hooks.rendered(owner.account_id, "refund")  # the last $7
    _account_ok(owner.account_id)


def test_a_dispute_takes_back_the_disputed_credit() -> None:
    owner = new_owner()
    payment = hooks.paid_checkout(
        owner.account_id, cents=1000, credit_nanos=10**10, intent="pi_disputed"
    )
    disputed = hooks.stripe_event(
        "charge.dispute.created", hooks.dispute("pi_disputed", amount=400, charge_id="ch_disp")
    )
    for _ in range(3):
        hooks.deliver(disputed)
    assert hooks.balance(owner.account_id) == 6 * 10**9
    assert hooks.state(payment)["status"] == "disputed"
    actions = db.execute(
        "SELECT count(*) FROM audit_log WHERE target_id = %s AND action = 'payment.dispute'",
        (payment,),
    ).fetchone()
    assert actions == (1,)
    _account_ok(owner.account_id)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "t=1,v1=deadbeef",
        "wrong secret",
        "stale",
    ],
)
def test_a_bad_or_stale_signature_is_a_400_and_changes_nothing(signature: str | None) -> None:
    owner = new_owner()
    payment, session_id = hooks.checkout_payment(
        owner.account_id, cents=500, credit_nanos=5 * 10**9
    )
    evt = hooks.stripe_event(
        "checkout.session.completed",
        hooks.session(session_id, owner.account_id, payment, amount=500),
    )
    payload = json.dumps(evt)
    header = {
        "wrong secret": hooks.signed(payload, secret="whsec_someone_else"),
        "stale": hooks.signed(payload, at=int(time.time()) - 301),
    }.get(signature or "", signature)
    result = hooks.post(payload, header)
    assert result["statusCode"] == 400
    assert json_body(result)["error"]["param"] == "Stripe-Signature"
    assert not _stored(evt["id"])
    assert hooks.balance(owner.account_id) == 0
    assert hooks.state(payment)["status"] == "pending"


def test_a_body_changed_after_signing_is_refused() -> None:
    owner = new_owner()
    payment, session_id = hooks.checkout_payment(
        owner.account_id, cents=500, credit_nanos=5 * 10**9
    )
    paid = hooks.session(session_id, owner.account_id, payment, amount=500)
    payload = json.dumps(hooks.stripe_event("checkout.session.completed", paid))
    result = hooks.post(payload.replace('"amount_total": 500', '"amount_total": 50000'),
                        hooks.signed(payload))  # fmt: skip
    assert result["statusCode"] == 400
    assert hooks.balance(owner.account_id) == 0


def test_without_a_webhook_secret_the_endpoint_is_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    reset_caches()
    payload = json.dumps(hooks.stripe_event("checkout.session.completed", {"id": "cs_x"}))
    result = hooks.post(payload, hooks.signed(payload))
    assert result["statusCode"] == 503
    assert hooks.error_code(result) == "missing_configuration"


def test_unknown_event_types_are_recorded_and_answered_200() -> None:
    evt = hooks.stripe_event("customer.created", {"id": "cus_unknown", "object": "customer"})
    assert json_body(hooks.deliver(evt)) == {"received": True}
    assert _stored(evt["id"])
    assert json_body(hooks.deliver(evt)) == {"received": True, "duplicate": True}


def test_an_unpaid_session_waits_and_a_failed_one_fails_with_an_email() -> None:
    owner = new_owner()
    payment, session_id = hooks.checkout_payment(
        owner.account_id, cents=900, credit_nanos=9 * 10**9
    )
    hooks.deliver(hooks.stripe_event("checkout.session.completed", hooks.session(
        session_id, owner.account_id, payment, amount=900, payment_status="unpaid")))  # fmt: skip
    assert hooks.state(payment)["status"] == "pending"
    failed = hooks.stripe_event("checkout.session.async_payment_failed", hooks.session(
        session_id, owner.account_id, payment, amount=900, payment_status="unpaid"))  # fmt: skip
    hooks.deliver(failed)
    hooks.deliver(failed)
    assert hooks.state(payment)["status"] == "failed"
    assert hooks.emails(owner.account_id, "payment_failed") == 1
    assert hooks.balance(owner.account_id) == 0


def test_an_expired_session_expires_its_payment_but_never_a_paid_one() -> None:
    owner = new_owner()
    payment, session_id = hooks.checkout_payment(
        owner.account_id, cents=600, credit_nanos=6 * 10**9
    )
    paid = hooks.session(session_id, owner.account_id, payment, amount=600)
    hooks.deliver(hooks.stripe_event("checkout.session.completed", paid))
    hooks.deliver(hooks.stripe_event("checkout.session.expired", paid | {"status": "expired"}))
    assert hooks.state(payment)["status"] == "succeeded"
    other, other_session = hooks.checkout_payment(owner.account_id, cents=600, credit_nanos=1)
    hooks.deliver(hooks.stripe_event("checkout.session.expired", hooks.session(
        other_session, owner.account_id, other, amount=600, payment_status="unpaid")))  # fmt: skip
    assert hooks.state(other)["status"] == "expired"


def test_concurrent_duplicate_deliveries_grant_once() -> None:
    owner = new_owner()
    payment, session_id = hooks.checkout_payment(owner.account_id, cents=1500, credit_nanos=CREDIT)
    paid = hooks.session(session_id, owner.account_id, payment, amount=1500)
    payload = json.dumps(hooks.stripe_event("checkout.session.completed", paid))
    codes: list[int] = []
    start = threading.Barrier(6)

    def post() -> None:
        start.wait()
        codes.append(hooks.post(payload, hooks.signed(payload))["statusCode"])
        db.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 6
    assert hooks.balance(owner.account_id) == CREDIT
    _account_ok(owner.account_id)


def test_a_purchase_during_the_trial_converts_it_and_keeps_the_trial_credit() -> None:
    owner = new_owner(plan_id="trial")
    trial_credit = hooks.balance(owner.account_id)
    hooks.paid_checkout(owner.account_id, cents=500, credit_nanos=5 * 10**9)
    row = db.execute(
        "SELECT plan_id, trial_converted_at IS NOT NULL FROM accounts WHERE id = %s",
        (owner.account_id,),
    ).fetchone()
    assert row == ("payg", True)
    assert hooks.balance(owner.account_id) == trial_credit + 5 * 10**9


def test_a_purchase_on_the_free_plan_moves_the_account_to_pay_as_you_go() -> None:
    owner = new_owner(plan_id="free")
    hooks.paid_checkout(owner.account_id, cents=500, credit_nanos=5 * 10**9)
    row = db.execute(
        "SELECT plan_id, trial_converted_at FROM accounts WHERE id = %s", (owner.account_id,)
    ).fetchone()
    assert row == ("payg", None)


def _chat(secret: str) -> int:
    lambda_event = event("chat", "chat-completions")
    lambda_event["headers"]["Authorization"] = f"Bearer {secret}"
    lambda_event["multiValueHeaders"]["Authorization"] = [f"Bearer {secret}"]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    return int(invoke("chat", lambda_event)["statusCode"])


def test_a_refund_of_spent_credit_blocks_chat_until_a_purchase_settles_it() -> None:
    owner = new_owner()
    key = new_key(owner)
    hooks.paid_checkout(owner.account_id, cents=500, credit_nanos=5 * 10**9, intent="pi_spent")
    assert _chat(key.secret) == 200  # spends some of the credit
    refund = hooks.charge("pi_spent", amount=500, refunded=500, charge_id="ch_spent")
    hooks.deliver(hooks.stripe_event("charge.refunded", refund))
    assert hooks.balance(owner.account_id) < 0
    assert _chat(key.secret) == 402
    hooks.paid_checkout(owner.account_id, cents=500, credit_nanos=5 * 10**9)
    assert hooks.balance(owner.account_id) > 0
    assert _chat(key.secret) == 200
    _account_ok(owner.account_id)
