"""E-mail bodies (docs/operations.md, e-mail): an HTML and a plain-text body for every
notice in `outbox.TEMPLATES`, rendered from the outbox row's payload.

Plain and short: a greeting line, a few sentences, maybe a next step. Every value from
the payload is HTML-escaped. Amounts are USD; a payload gives them as `<name>_nanos`
(an integer, preferred) or `<name>` (dollars). A sentence whose values are missing from
the payload is left out, so an older row still renders.

Payload keys each notice reads (all optional):

| notice | keys |
|---|---|
| welcome | name, trial_credit |
| trial_ending | trial_ends_at, balance |
| trial_ended | removed, plan |
| low_balance | balance, threshold |
| key_limit | key_name, level (80 or 100), spent, limit, window_start |
| spend_alert | threshold, spent, month |
| spend_limit_reached | limit, spent, month |
| payment_received | amount, credit, balance, description |
| payment_failed | amount, reason |
| refund | amount, balance, description |
| key_rotated | key_name, prefix, last4, old_secret_expires_in_hours, next_step |
| team_invitation | team, role, accept_path, expires_at |
"""

from __future__ import annotations

import html
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from gatewayz.billing.money import NANOS_PER_USD
from gatewayz.email.outbox import TEMPLATES
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable

SIGNATURE = "The Gatewayz team"


@record
class Rendered:
    """The two bodies of one e-mail."""

    html: str
    text: str


class Values:
    """The payload, read safely: each accessor gives None for a missing or odd value."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self._payload = payload

    def text(self, name: str) -> str | None:
        value = self._payload.get(name)
        if value is None or isinstance(value, dict | list):
            return None
        return str(value).strip() or None

    def usd(self, name: str) -> str | None:
        """`<name>_nanos` or `<name>` (dollars) as `$1,234.56`."""
        nanos = self._payload.get(f"{name}_nanos")
        try:
            if isinstance(nanos, int) and not isinstance(nanos, bool):
                return format_usd(Decimal(nanos) / NANOS_PER_USD)
            value = self._payload.get(name)
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                return format_usd(Decimal(str(value)))
        except InvalidOperation:
            return None
        return None


def format_usd(amount: Decimal) -> str:
    """Dollars for people: cents, or four places below a cent (a partly spent trial)."""
    if not amount.is_finite():
        raise InvalidOperation
    places = Decimal("0.01") if abs(amount) >= 1 or amount == 0 else Decimal("0.0001")
    rounded = amount.quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,}"


Paragraphs = list[str | None]


def _of(amount: str | None) -> str:
    return f" of {amount}" if amount else ""


def _welcome(v: Values) -> Paragraphs:
    return [
        "Your Gatewayz account is ready: one API key for hundreds of models, with the "
        "OpenAI SDKs you already use.",
        v.usd("trial_credit") and f"Your trial comes with {v.usd('trial_credit')} of credit.",
        "Create keys and see your usage through the API (GET /v1/key, GET /v1/credits).",
    ]


def _trial_ending(v: Values) -> Paragraphs:
    return [
        "Your free trial ends within a day"
        + (f" (at {v.text('trial_ends_at')})." if v.text("trial_ends_at") else "."),
        v.usd("balance") and f"Trial credit left: {v.usd('balance')}.",
        "Unspent trial credit is removed when the trial ends. Buy credit before then and "
        "you keep it, along with your trial's limits.",
    ]


def _trial_ended(v: Values) -> Paragraphs:
    return [
        "Your free trial has ended and your account is now on the "
        f"{v.text('plan') or 'free'} plan.",
        v.usd("removed") and f"Unspent trial credit removed: {v.usd('removed')}.",
        "Buy credit any time to keep using paid models.",
    ]


def _low_balance(v: Values) -> Paragraphs:
    return [
        f"Your balance is {v.usd('balance') or 'low'}"
        + (
            f", below the {v.usd('threshold')} you asked us to watch."
            if v.usd("threshold")
            else "."
        ),
        "Add credit to avoid failed requests. We write again only after the balance has "
        "been back above your threshold.",
    ]


def _key_limit(v: Values) -> Paragraphs:
    name = v.text("key_name") or "one of your keys"
    reached = v.text("level") == "100"
    return [
        f"Your API key \u201c{name}\u201d has "
        + ("reached its spending limit." if reached else "used 80% of its spending limit."),
        v.usd("spent")
        and v.usd("limit")
        and f"Spent {v.usd('spent')} of {v.usd('limit')}"
        + (f" since {v.text('window_start')}." if v.text("window_start") else "."),
        "Requests with this key are refused until its limit resets or is raised."
        if reached
        else "Raise the key's limit if you expect to need more.",
    ]


def _spend_alert(v: Values) -> Paragraphs:
    month = v.text("month") or "this month"
    return [
        f"Your account's usage in {month} has passed {v.usd('threshold') or 'an alert threshold'}.",
        v.usd("spent") and f"Spent so far: {v.usd('spent')}.",
        "You set this alert in your account's spending controls.",
    ]


def _spend_limit_reached(v: Values) -> Paragraphs:
    month = v.text("month") or "this month"
    return [
        "Your account reached its monthly spending limit"
        + (f" of {v.usd('limit')}" if v.usd("limit") else "")
        + f" for {month}.",
        "Paid requests are refused until the month ends or you raise the limit.",
    ]


def _payment_received(v: Values) -> Paragraphs:
    return [
        f"Thank you: we received your payment{_of(v.usd('amount'))}"
        + (f" ({v.text('description')})." if v.text("description") else "."),
        v.usd("credit") and f"Credit added: {v.usd('credit')}.",
        v.usd("balance") and f"Your balance is now {v.usd('balance')}.",
    ]


def _payment_failed(v: Values) -> Paragraphs:
    return [
        f"Your payment{_of(v.usd('amount'))} did not go through.",
        v.text("reason") and f"The card issuer said: {v.text('reason')}",
        "No credit was added. Check your card details and try again.",
    ]


def _refund(v: Values) -> Paragraphs:
    return [
        f"We refunded {v.usd('amount') or 'your payment'}"
        + (f" ({v.text('description')})." if v.text("description") else "."),
        "The credit that payment granted has been removed from your account.",
        v.usd("balance") and f"Your balance is now {v.usd('balance')}.",
    ]


def _key_rotated(v: Values) -> Paragraphs:
    last4 = v.text("last4")
    shown = " ".join(x for x in (v.text("prefix"), f"\u2026{last4}" if last4 else None) if x)
    hours = v.text("old_secret_expires_in_hours")
    return [
        f"Your API key \u201c{v.text('key_name') or 'unnamed'}\u201d was rotated.",
        f"The secret you have ({shown}) keeps working for {hours} more hours, then stops."
        if shown and hours
        else None,
        v.text("next_step"),
    ]


def _team_invitation(v: Values) -> Paragraphs:
    return [
        f"You are invited to join the team {v.text('team') or ''} on Gatewayz"
        + (f" as {v.text('role')}." if v.text("role") else "."),
        v.text("accept_path") and f"To accept, sign in and POST {v.text('accept_path')}.",
        v.text("expires_at") and f"The invitation expires at {v.text('expires_at')}.",
    ]


BODIES: dict[str, Callable[[Values], Paragraphs]] = {
    "welcome": _welcome,
    "trial_ending": _trial_ending,
    "trial_ended": _trial_ended,
    "low_balance": _low_balance,
    "key_limit": _key_limit,
    "spend_alert": _spend_alert,
    "spend_limit_reached": _spend_limit_reached,
    "payment_received": _payment_received,
    "payment_failed": _payment_failed,
    "refund": _refund,
    "key_rotated": _key_rotated,
    "team_invitation": _team_invitation,
}
assert set(BODIES) == TEMPLATES, "every notice needs a body"


def render(template: str, subject: str, payload: dict[str, Any]) -> Rendered:
    """The HTML and text bodies of notice `template`.

    Raises:
        ValueError: `template` is not a known notice.
    """
    body = BODIES.get(template)
    if body is None:
        raise ValueError(f"unknown e-mail template {template!r}")
    paragraphs = [p for p in body(Values(payload)) if p]
    text = "\n\n".join(["Hello,", *paragraphs, f"\u2014 {SIGNATURE}"]) + "\n"
    rows = "".join(f"<p>{html.escape(p)}</p>\n" for p in ["Hello,", *paragraphs])
    page = (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>\n"
        '<body style="font-family: sans-serif; line-height: 1.5; max-width: 36em">\n'
        f"{rows}<p>\u2014 {html.escape(SIGNATURE)}</p>\n</body></html>\n"
    )
    return Rendered(html=page, text=text)
