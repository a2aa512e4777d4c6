"""Signed webhook delivery of the Stripe stand-in's events, as Stripe signs them.

`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, computed by the
`stripe` library itself so what `stripe.Webhook.construct_event` checks is what we send.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from gatewayz.dev.stripe_standin.objects import Obj

    # Gets the raw body and the headers Stripe sends; answers the HTTP status.
    Deliver = Callable[[bytes, dict[str, str]], int]

log = logging.getLogger("gatewayz.dev.stripe_standin")
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def payload(event: Obj) -> bytes:
    """The body Stripe posts: the event as (pretty-printed) JSON."""
    return json.dumps(event, indent=2).encode()


def signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header for `body`."""
    import stripe

    header: str = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp
    )
    return header


def post_to(url: str, timeout_s: float = 30.0) -> Deliver:
    """A deliverer POSTing each event to `url` (a webhook endpoint)."""
    import httpx

    def deliver(body: bytes, headers: dict[str, str]) -> int:
        return httpx.post(url, content=body, headers=headers, timeout=timeout_s).status_code

    return deliver


def send(deliver: Deliver, event: Obj, secret: str) -> bool:
    """Deliver one event, signed now; False (logged) on a non-2xx answer or an error."""
    body = payload(event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Stripe-Signature": signature(body, secret),
    }
    try:
        status = deliver(body, headers)
    except Exception as exc:  # noqa: BLE001 - any failure of the receiver is a failed delivery
        log.warning("stripe stand-in: delivering %s %s failed: %r", event["type"], event["id"], exc)
        return False
    if not 200 <= status < 300:
        log.warning("stripe stand-in: %s %s answered HTTP %s", event["type"], event["id"], status)
        return False
    return True
