"""Checkout and PaymentIntent events (docs/api.md, webhooks): a payment was made, failed
or expired.

A payment is found by the Stripe id WE saved on its row when we created the session or
the PaymentIntent, never by the metadata alone (a session whose id a stopped process
never saved is matched to its row by our metadata only while that row has no session),
and what Stripe charged must match what we asked. A session we did not create, or one
whose amount or currency differs, grants nothing: it is recorded, audited and logged.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from gatewayz import errors
from gatewayz.billing import payments
from gatewayz.billing.webhook_event import ref
from gatewayz.coupons import discount
from gatewayz.identity import audit
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    import psycopg

    from gatewayz.billing.webhook_event import Event


def checkout_completed(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`checkout.session.completed` (paid only; `unpaid` waits for the async success)
    and `checkout.session.async_payment_succeeded`: grant the payment's credit."""
    session = event.object
    payment = payments.find(cur, "stripe_checkout_session_id", ref(session.get("id")))
    if payment is None:
        payment = _unsaved_session(cur, session)
    if payment is None:
        get_logger().warning("checkout session we did not create", extra={"event_id": event.id})
        return None
    if session.get("payment_status") != "paid":
        return payment.account_id
    problem = _mismatch(payment, session, amount_field="amount_total")
    if problem is None and session.get("client_reference_id") not in (None, payment.account_id):
        problem = "client_reference_id"
    if problem is not None:
        _refuse(cur, payment, problem, event)
        return payment.account_id
    if payment.kind == "subscription":
        _attach_subscription(cur, payment, session)
        return payment.account_id
    intent_id = ref(session.get("payment_intent"))
    method_id, charge_id, card = _intent_details(intent_id)
    payments.settle(
        cur, payment, payment_intent_id=intent_id, charge_id=charge_id, payment_method_id=method_id,
        card_fingerprint=card, customer_id=ref(session.get("customer")),
    )  # fmt: skip
    discount.consume(cur, payment)  # the percent coupon this checkout carried is used up
    return payment.account_id


def _unsaved_session(cur: psycopg.Cursor[Any], session: dict[str, Any]) -> payments.Payment | None:
    """The payment a session was opened for by a process that stopped before saving the
    session's id (checkout.py writes the row, opens the session, then saves its id): the
    row named by the metadata we gave the session, only while that row has no session and
    is the metadata's account. The amount, currency and reference checks then apply as to
    any session, so a paid session is never left without its credit."""
    metadata = session.get("metadata")
    if not isinstance(metadata, dict):
        return None
    payment = payments.find(cur, "id", metadata.get("payment_id"))
    session_id = ref(session.get("id"))
    if (
        payment is None
        or session_id is None
        or payment.checkout_session_id is not None
        or payment.account_id != metadata.get("account_id")
    ):
        return None
    cur.execute(
        "UPDATE payments SET stripe_checkout_session_id = %s, updated_at = now() WHERE id = %s",
        (session_id, payment.id),
    )
    return dataclasses.replace(payment, checkout_session_id=session_id)


def checkout_failed(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`checkout.session.async_payment_failed`: the payment failed."""
    payment = payments.find(cur, "stripe_checkout_session_id", ref(event.object.get("id")))
    if payment is None:
        return None
    payments.mark(cur, payment, "failed", failure="The payment did not go through.")
    return payment.account_id


def checkout_expired(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`checkout.session.expired`: the customer never paid."""
    payment = payments.find(cur, "stripe_checkout_session_id", ref(event.object.get("id")))
    if payment is None:
        return None
    if payment.status == "pending":
        payments.mark(cur, payment, "expired")
    return payment.account_id


def intent_succeeded(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`payment_intent.succeeded`: grant an auto top-up (checkout payments are granted
    by their session's events)."""
    intent = event.object
    payment = _topup(cur, intent)
    if payment is None:
        return None
    problem = _mismatch(payment, intent, amount_field="amount")
    if problem is None and not _customer_matches(cur, payment, intent):
        problem = "customer"
    if problem is not None:
        _refuse(cur, payment, problem, event)
        return payment.account_id
    charge = intent.get("latest_charge")
    payments.settle(
        cur, payment, payment_intent_id=str(intent["id"]), charge_id=ref(charge),
        payment_method_id=ref(intent.get("payment_method")),
        card_fingerprint=_card_fingerprint(charge), customer_id=ref(intent.get("customer")),
    )  # fmt: skip
    return payment.account_id


def intent_failed(cur: psycopg.Cursor[Any], event: Event) -> str | None:
    """`payment_intent.payment_failed`: an auto top-up was declined."""
    intent = event.object
    payment = _topup(cur, intent)
    if payment is None:
        return None
    error = intent.get("last_payment_error") or {}
    payments.mark(cur, payment, "failed", failure=error.get("message") or "Card declined.")
    return payment.account_id


def _topup(cur: psycopg.Cursor[Any], intent: dict[str, Any]) -> payments.Payment | None:
    """Our auto top-up this PaymentIntent pays: by its id, or by the payment id we put
    in its metadata when we created it (then checked against the row)."""
    payment = payments.find(cur, "stripe_payment_intent_id", ref(intent.get("id")))
    if payment is None:
        claimed = (intent.get("metadata") or {}).get("payment_id")
        if isinstance(claimed, str):
            payment = payments.find(cur, "id", claimed)
            if payment is not None and payment.payment_intent_id not in (None, intent.get("id")):
                payment = None  # that payment is paid by another PaymentIntent
    if payment is None or payment.kind != "auto_topup":
        return None
    return payment


def _mismatch(payment: payments.Payment, obj: dict[str, Any], *, amount_field: str) -> str | None:
    """Which of amount and currency differ from what we asked Stripe for, if any."""
    if str(obj.get("currency") or "").lower() != payment.currency:
        return "currency"
    if obj.get(amount_field) != payment.charged_cents:
        return "amount"
    return None


def _customer_matches(
    cur: psycopg.Cursor[Any], payment: payments.Payment, intent: dict[str, Any]
) -> bool:
    row = cur.execute(
        "SELECT stripe_customer_id FROM accounts WHERE id = %s", (payment.account_id,)
    ).fetchone()
    return row is not None and row[0] is not None and row[0] == ref(intent.get("customer"))


def _refuse(
    cur: psycopg.Cursor[Any], payment: payments.Payment, problem: str, event: Event
) -> None:
    """Grant nothing for a Stripe object that does not match our row: audit and log it."""
    audit.record(
        cur, action="payment.mismatch", target_type="payment", target_id=payment.id,
        account_id=payment.account_id, actor_kind="stripe",
        after={"mismatch": problem, "event_id": event.id, "event_type": event.type},
    )  # fmt: skip
    payments.log_mismatch(payment, problem, event_id=event.id)


def _attach_subscription(
    cur: psycopg.Cursor[Any], payment: payments.Payment, session: dict[str, Any]
) -> None:
    """A subscription checkout was paid: its first invoice grants the plan's credit
    (`invoice.paid`). Give the row the invoice's id so that event finds it; if the
    invoice came first and has its own row, this attempt's row is closed as canceled."""
    invoice_id = ref(session.get("invoice"))
    subscription_id = ref(session.get("subscription"))
    taken = (
        invoice_id is not None
        and cur.execute(
            "SELECT 1 FROM payments WHERE stripe_invoice_id = %s AND id <> %s",
            (invoice_id, payment.id),
        ).fetchone()
    )
    if taken:
        payments.mark(cur, payment, "canceled", failure="Recorded by its invoice's payment.")
        return
    cur.execute(
        """UPDATE payments SET stripe_invoice_id = COALESCE(stripe_invoice_id, %s),
                               stripe_subscription_id = COALESCE(stripe_subscription_id, %s),
                               updated_at = now()
            WHERE id = %s""",
        (invoice_id, subscription_id, payment.id),
    )


def _intent_details(intent_id: str | None) -> tuple[str | None, str | None, str | None]:
    """The card, the charge and the card's fingerprint of a PaymentIntent, read from
    Stripe (the session event has none of them). A failure to read them only loses the
    saved card and the referral check of the card: logged."""
    if intent_id is None:
        return None, None, None
    import stripe

    from gatewayz.billing import stripe_client

    try:
        found = stripe_client.client().v1.payment_intents.retrieve(
            intent_id, params={"expand": ["latest_charge"]}
        )
    except (stripe.StripeError, errors.MissingConfiguration) as exc:
        get_logger().warning(
            "could not read a PaymentIntent", extra={"intent": intent_id, "error": str(exc)}
        )
        return None, None, None
    intent = stripe_client.as_dict(found)
    charge = intent.get("latest_charge")
    return ref(intent.get("payment_method")), ref(charge), _card_fingerprint(charge)


def _card_fingerprint(charge: Any) -> str | None:
    """The fingerprint of the card a charge (an id, read from Stripe, or the object) was
    paid with: what tells the same card apart across customers. None when unknown."""
    if isinstance(charge, str):
        import stripe

        from gatewayz.billing import stripe_client

        try:
            charge = stripe_client.as_dict(stripe_client.client().v1.charges.retrieve(charge))
        except (stripe.StripeError, errors.MissingConfiguration) as exc:
            get_logger().warning("could not read a charge", extra={"error": str(exc)})
            return None
    details = charge.get("payment_method_details") if isinstance(charge, dict) else None
    card = details.get("card") if isinstance(details, dict) else None
    fingerprint = card.get("fingerprint") if isinstance(card, dict) else None
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None
