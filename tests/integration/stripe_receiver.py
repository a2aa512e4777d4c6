"""A webhook endpoint for the Stripe fake's tests: it accepts only what
`stripe.Webhook.construct_event` verifies with the fake's secret, as a real endpoint would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe


@dataclass
class Receiver:
    """Verifies and keeps every delivered event; `status` is what it answers."""

    secret: str
    status: int = 200
    received: list[Any] = field(default_factory=list)
    rejected: int = 0

    def __call__(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], self.secret)
        except stripe.SignatureVerificationError:
            self.rejected += 1
            return 400
        if self.status < 300:
            self.received.append(event)
        return self.status

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.received]

    def of(self, type_: str) -> list[Any]:
        return [event for event in self.received if event.type == type_]
