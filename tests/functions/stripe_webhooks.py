"""Stripe webhook deliveries for tests: objects shaped as Stripe sends them, in events
signed with the stripe library's scheme, through the webhooks function's real handler."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import stripe

from gatewayz import db
from tests.conftest import reset_caches
from tests.functions.events import event, invoke, json_body

if TYPE_CHECKING:
    import pytest

SECRET = "whsec_test_" + "k" * 32
API_VERSION = "2026-10-28.endive"


def configure(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """Give the webhook its secret (and any other settings), read afresh."""
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reset_caches()


def stripe_event(kind: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """An event envelope as Stripe posts it."""
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": API_VERSION,
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def signed(payload: str, *, secret: str = SECRET, at: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send for `payload`."""
    stamp = at if at is not None else int(time.time())
    return str(stripe.WebhookSignature.generate_signature_header(payload, secret, stamp))


def post(payload: str, signature: str | None) -> dict[str, Any]:
    """POST the raw body to /webhooks/stripe through the function's Lambda handler."""
    headers = {"Content-Type": "application/json", "Host": "api.example.com"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    lambda_event = event(
        "webhooks", path="/webhooks/stripe", httpMethod="POST", body=payload, headers=headers
    )
    return invoke("webhooks", lambda_event)


def deliver(evt: dict[str, Any], **signing: Any) -> dict[str, Any]:
    """Sign and deliver one event; the handler's result (asserted 200)."""
    payload = json.dumps(evt)
    result = post(payload, signed(payload, **signing))
    assert result["statusCode"] == 200, result["body"]
    return result


def checkout_payment(
    account_id: str, *, cents: int, credit_nanos: int, kind: str = "credit_purchase"
) -> tuple[str, str]:
    """A pending payment row with its session id, as `POST /v1/billing/checkout` leaves
    it: (payment id, session id)."""
    session_id = f"cs_test_{uuid.uuid4().hex}"
    row = db.execute(
        """INSERT INTO payments (account_id, kind, amount_cents, credit_nanos, status,
                                 stripe_checkout_session_id)
           VALUES (%s, %s, %s, %s, 'pending', %s) RETURNING id""",
        (account_id, kind, cents, credit_nanos, session_id),
    ).fetchone()
    assert row is not None
    return str(row[0]), session_id


def paid_checkout(
    account_id: str, *, cents: int, credit_nanos: int, intent: str | None = None
) -> str:
    """A checkout payment whose paid session Stripe reported: the payment id."""
    payment, session_id = checkout_payment(account_id, cents=cents, credit_nanos=credit_nanos)
    paid = session(session_id, account_id, payment, amount=cents, intent=intent)
    deliver(stripe_event("checkout.session.completed", paid))
    return payment


def session(
    session_id: str,
    account_id: str,
    payment_id: str,
    *,
    amount: int,
    intent: str | None = None,
    payment_status: str = "paid",
    metadata: dict[str, str] | None = None,
    currency: str = "usd",
) -> dict[str, Any]:
    """A Checkout Session in payment mode."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "amount_subtotal": amount,
        "amount_total": amount,
        "currency": currency,
        "client_reference_id": account_id,
        "customer": None,
        "metadata": metadata or {"payment_id": payment_id, "account_id": account_id},
        "payment_intent": intent or f"pi_{uuid.uuid4().hex[:24]}",
        "payment_status": payment_status,
        "status": "complete",
    }


def charge(intent: str, *, amount: int, refunded: int, charge_id: str) -> dict[str, Any]:
    """A Charge as `charge.refunded` carries it (cumulative `amount_refunded`)."""
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "currency": "usd",
        "payment_intent": intent,
        "refunded": refunded >= amount,
        "status": "succeeded",
    }


def dispute(intent: str, *, amount: int, charge_id: str) -> dict[str, Any]:
    """A Dispute as `charge.dispute.created` carries it."""
    return {
        "id": f"dp_{uuid.uuid4().hex[:24]}",
        "object": "dispute",
        "amount": amount,
        "charge": charge_id,
        "currency": "usd",
        "payment_intent": intent,
        "reason": "fraudulent",
        "status": "needs_response",
    }


def state(payment_id: str) -> dict[str, Any]:
    """The payment row's money columns."""
    row = db.execute(
        """SELECT status, granted_nanos, reversed_nanos, refunded_cents, disputed_cents,
                  paid_at IS NOT NULL, stripe_payment_intent_id
             FROM payments WHERE id = %s""",
        (payment_id,),
    ).fetchone()
    assert row is not None
    keys = ("status", "granted", "reversed", "refunded", "disputed", "paid", "intent")
    return dict(zip(keys, row, strict=True))


def balance(account_id: str) -> int:
    row = db.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def emails(account_id: str, template: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM email_outbox WHERE account_id = %s AND template = %s",
        (account_id, template),
    ).fetchone()
    assert row is not None
    return int(row[0])


def rendered(account_id: str, template: str) -> str:
    """The text body of the account's latest e-mail of `template`, as it will be sent."""
    from gatewayz.email import templates

    row = db.execute(
        """SELECT subject, payload FROM email_outbox WHERE account_id = %s AND template = %s
            ORDER BY created_at DESC LIMIT 1""",
        (account_id, template),
    ).fetchone()
    assert row is not None
    return templates.render(template, row[0], row[1]).text


def error_code(result: dict[str, Any]) -> str:
    return str(json_body(result)["error"]["code"])
