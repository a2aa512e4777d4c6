"""PaymentIntents, charges, refunds and disputes of the Stripe stand-in."""

from __future__ import annotations

from gatewayz.dev.stripe_standin import catalog
from gatewayz.dev.stripe_standin.objects import (
    Obj,
    State,
    StripeError,
    base,
    boolean,
    integer,
    metadata,
    text,
)

DECLINE_MESSAGE = "Your card was declined."
MINIMUM_CHARGE = 50  # cents: Stripe's minimum for USD


def intent(
    state: State,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    pm_id: str | None,
    meta: Obj | None,
    description: str | None,
    setup_future_usage: str | None,
    status: str = "processing",
) -> Obj:
    """A new PaymentIntent (event `payment_intent.created`)."""
    pi = state.put(
        base(
            "pi",
            "payment_intent",
            amount=amount,
            amount_received=0,
            currency=currency,
            customer=customer,
            description=description,
            payment_method=pm_id,
            payment_method_types=["card"],
            setup_future_usage=setup_future_usage,
            metadata=dict(meta or {}),
            status=status,
            latest_charge=None,
            last_payment_error=None,
            cancellation_reason=None,
        )
    )
    state.emit("payment_intent.created", pi)
    return pi


def charge(
    state: State,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    pm: Obj,
    meta: Obj | None = None,
    description: str | None = None,
    setup_future_usage: str | None = None,
) -> Obj:
    """A confirmed PaymentIntent with its Charge: `succeeded`, or `requires_payment_method`
    with `last_payment_error` when the card declines. Emits the events Stripe sends."""
    pi = intent(
        state,
        amount=amount,
        currency=currency,
        customer=customer,
        pm_id=pm["id"],
        meta=meta,
        description=description,
        setup_future_usage=setup_future_usage,
    )
    declined = catalog.declines(state, pm)
    ch = state.put(
        base(
            "ch",
            "charge",
            amount=amount,
            amount_captured=0 if declined else amount,
            amount_refunded=0,
            captured=not declined,
            currency=currency,
            customer=customer,
            description=description,
            disputed=False,
            failure_code="card_declined" if declined else None,
            failure_message=DECLINE_MESSAGE if declined else None,
            metadata=dict(meta or {}),
            outcome={"type": "issuer_declined" if declined else "authorized"},
            paid=not declined,
            payment_intent=pi["id"],
            payment_method=pm["id"],
            payment_method_details={"type": "card", "card": dict(pm["card"])},
            refunded=False,
            status="failed" if declined else "succeeded",
        )
    )
    pi["latest_charge"] = ch["id"]
    if declined:
        pi["status"] = "requires_payment_method"
        pi["last_payment_error"] = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": DECLINE_MESSAGE,
            "charge": ch["id"],
            "payment_method": pm,
        }
        state.emit("charge.failed", ch)
        state.emit("payment_intent.payment_failed", pi)
        return pi
    pi["status"] = "succeeded"
    pi["amount_received"] = amount
    state.emit("payment_intent.succeeded", pi)
    state.emit("charge.succeeded", ch)
    return pi


def declined_error(pi: Obj) -> StripeError:
    """The 402 Stripe answers when confirming `pi` declined."""
    error = pi["last_payment_error"]
    return StripeError(
        402,
        DECLINE_MESSAGE,
        type="card_error",
        code="card_declined",
        decline_code="generic_decline",
        charge=error["charge"],
        payment_intent=pi,
        payment_method=error["payment_method"],
        doc_url="https://stripe.com/docs/error-codes/card-declined",
    )


def create_payment_intent(state: State, params: Obj) -> Obj:
    """`POST /v1/payment_intents`; with `confirm=true` the card is charged at once.

    Raises:
        StripeError: 400 for bad parameters, 402 card_error when the card declines.
    """
    amount = integer(params, "amount", required=True) or 0
    if amount < MINIMUM_CHARGE:
        raise StripeError(
            400, "Amount must be at least $0.50 usd", code="amount_too_small", param="amount"
        )
    currency = (text(params, "currency", required=True) or "").lower()
    customer = text(params, "customer")
    if customer is not None:
        state.get(customer, "customer", "customer")
    pm_id = text(params, "payment_method")
    pm = catalog.card(state, pm_id) if pm_id is not None else None
    if pm is not None and pm["customer"] is not None and pm["customer"] != customer:
        raise StripeError(
            400,
            f"The provided PaymentMethod was previously attached to a Customer {pm['customer']}"
            " and cannot be used with another Customer.",
            param="payment_method",
        )
    confirm = boolean(params, "confirm") is True
    if boolean(params, "off_session") and not confirm:
        raise StripeError(
            400, "off_session can only be set when confirm=true.", param="off_session"
        )
    meta = metadata(params)
    if not confirm or pm is None:
        if confirm:
            raise StripeError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
                param="payment_method",
            )
        return intent(
            state,
            amount=amount,
            currency=currency,
            customer=customer,
            pm_id=pm_id,
            meta=meta,
            description=text(params, "description"),
            setup_future_usage=text(params, "setup_future_usage"),
            status="requires_confirmation" if pm else "requires_payment_method",
        )
    pi = charge(
        state,
        amount=amount,
        currency=currency,
        customer=customer,
        pm=pm,
        meta=meta,
        description=text(params, "description"),
        setup_future_usage=text(params, "setup_future_usage"),
    )
    if pi["status"] != "succeeded":
        raise declined_error(pi)
    return pi


def charge_of(state: State, params: Obj) -> Obj:
    """The charge a refund names, directly or through its PaymentIntent.

    Raises:
        StripeError: 400 when neither is given or nothing was charged; 404 unknown ids.
    """
    charge_id = text(params, "charge")
    pi_id = text(params, "payment_intent")
    if charge_id is None and pi_id is None:
        raise StripeError(
            400,
            "One of `charge` or `payment_intent` is required.",
            code="parameter_missing",
            param="charge",
        )
    if charge_id is None:
        pi = state.get(pi_id, "payment_intent", "payment_intent")
        if pi["status"] != "succeeded":
            raise StripeError(
                400,
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge_id = pi["latest_charge"]
    return state.get(charge_id, "charge", "charge")


def create_refund(state: State, params: Obj) -> Obj:
    """`POST /v1/refunds`: a full or partial refund; partial refunds accumulate.

    Raises:
        StripeError: 400 when nothing is left to refund or `amount` exceeds what is left.
    """
    ch = charge_of(state, params)
    left = ch["amount_captured"] - ch["amount_refunded"]
    if ch["status"] != "succeeded" or left <= 0:
        raise StripeError(
            400, f"Charge {ch['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = integer(params, "amount", minimum=1)
    amount = left if amount is None else amount
    if amount > left:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            code="amount_too_large",
            param="amount",
        )
    refund = state.put(
        base(
            "re",
            "refund",
            amount=amount,
            charge=ch["id"],
            currency=ch["currency"],
            payment_intent=ch["payment_intent"],
            reason=text(params, "reason"),
            status="succeeded",
            metadata=metadata(params),
        )
    )
    previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] == ch["amount_captured"]
    state.emit("refund.created", refund)
    state.emit("charge.refunded", ch, previous)
    return refund


def dispute(state: State, charge_id: str, amount: int | None = None) -> Obj:
    """A dispute opened on a charge (a local control: only a card holder does this).

    Raises:
        StripeError: 400 for a charge that was not paid or is already disputed.
    """
    ch = state.get(charge_id, "charge", "charge")
    if ch["status"] != "succeeded" or ch["disputed"]:
        raise StripeError(400, f"Charge {charge_id} cannot be disputed.", param="charge")
    amount = ch["amount_captured"] if amount is None else amount
    if not 0 < amount <= ch["amount_captured"]:
        raise StripeError(400, "The dispute amount exceeds the charge.", param="amount")
    dp = state.put(
        base(
            "dp",
            "dispute",
            amount=amount,
            charge=ch["id"],
            currency=ch["currency"],
            payment_intent=ch["payment_intent"],
            reason="fraudulent",
            status="needs_response",
            is_charge_refundable=False,
            metadata={},
        )
    )
    ch["disputed"] = True
    state.emit("charge.dispute.created", dp)
    return dp
