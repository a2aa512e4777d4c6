"""The Stripe fake: the local Stripe stand-in (`gatewayz.dev.stripe_standin`) on a real port.

The code under test and the tests drive it with the real `stripe` client
(`STRIPE_API_BASE`); its events arrive signed with `STRIPE_WEBHOOK_SECRET`, where the test
says: nowhere (only recorded in `fake.events`, to replay, reorder or withhold), a callable
(`Receiver` checks signatures as a real endpoint does), or the real webhooks function
through an API Gateway event (`to_webhooks_function`). Fixtures: `stripe_fake` (settings
pointed at a fresh fake), `stripe_receiver`, `stripe_client`.

    def test_buy(stripe_fake: FakeStripe) -> None:
        stripe_fake.deliver_to(to_webhooks_function)
        session = stripe_fake.client().v1.checkout.sessions.create(params)
        stripe_fake.pay(session.id)
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import stripe

from gatewayz.dev.stripe_standin import StripeStandin
from tests.conftest import reset_caches
from tests.fakes.asgi_server import serve_asgi

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gatewayz.dev.stripe_standin.events import Deliver

SECRET_KEY = "sk_test_local_fake"


@dataclass
class FakeStripe:
    """A running stand-in and what the code under test needs to reach it."""

    standin: StripeStandin
    api_base: str  # STRIPE_API_BASE: http://127.0.0.1:<port>
    secret_key: str  # STRIPE_SECRET_KEY
    webhook_secret: str  # STRIPE_WEBHOOK_SECRET (whsec_…)

    @property
    def env(self) -> dict[str, str]:
        """The settings that point the gateway at this fake."""
        return {
            "STRIPE_SECRET_KEY": self.secret_key,
            "STRIPE_API_BASE": self.api_base,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
        }

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event so far, oldest first (Stripe's JSON shape)."""
        return self.standin.events

    def events_of(self, type_: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == type_]

    def deliver_to(self, deliver: Deliver | None) -> None:
        """Deliver events from now on to `deliver(body, headers) -> status` (None: record)."""
        self.standin.deliver = deliver

    def signed(
        self, event: dict[str, Any], timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """An event's body and headers, signed as Stripe signs them."""
        return self.standin.signed(event, timestamp)

    def client(self) -> stripe.StripeClient:
        """The official client, pointed at the fake."""
        return stripe.StripeClient(
            self.secret_key, base_addresses={"api": self.api_base}, max_network_retries=0
        )

    def pay(
        self, session_id: str, *, card: str = "success", card_number: str | None = None
    ) -> httpx.Response:
        """Pay a checkout session through the local control (JSON: the session, or the
        card error); `card="decline"` uses a declining card; the same `card_number` gives
        the same card fingerprint (else each payment's card is new)."""
        extra = {"card_number": card_number} if card_number else {}
        return self.control(f"checkout/{session_id}/pay", card=card, **extra)

    def control(self, path: str, **form: str) -> httpx.Response:
        """`POST /_local/<path>` (renew, dispute, decline, redeliver), answering JSON."""
        return httpx.post(
            f"{self.api_base}/_local/{path}",
            data=form,
            headers={"Accept": "application/json"},
            timeout=30,
        )


@contextmanager
def serve_stripe(deliver: Deliver | None = None) -> Iterator[FakeStripe]:
    """A stand-in on a free local port, delivering to `deliver` (None: only recorded)."""
    secret = "whsec_" + secrets.token_hex(16)
    standin = StripeStandin(secret, deliver=deliver)
    with serve_asgi(standin.app) as port:
        yield FakeStripe(standin, f"http://127.0.0.1:{port}", SECRET_KEY, secret)


@dataclass
class Receiver:
    """A webhook endpoint that accepts only what `stripe.Webhook.construct_event` verifies
    with the fake's secret, as a real endpoint would; it keeps what it took and answers
    `status`."""

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


def to_webhooks_function(body: bytes, headers: dict[str, str]) -> int:
    """Deliver to `functions/webhooks/app.py`'s handler as API Gateway would; its status."""
    from tests.functions import events

    lambda_event = events.event(
        "webhooks",
        path="/webhooks/stripe",
        httpMethod="POST",
        headers={**headers, "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"},
        body=body.decode(),
    )
    status: int = events.invoke("webhooks", lambda_event)["statusCode"]
    return status


@pytest.fixture
def stripe_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    """A Stripe fake the gateway's settings point at (events only recorded until a test
    calls `deliver_to`)."""
    with serve_stripe() as fake:
        for name, value in fake.env.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        try:
            yield fake
        finally:
            monkeypatch.undo()
            reset_caches()


@pytest.fixture
def stripe_receiver(stripe_fake: FakeStripe) -> Receiver:
    """A signature-checking receiver that `stripe_fake` delivers to."""
    receiver = Receiver(stripe_fake.webhook_secret)
    stripe_fake.deliver_to(receiver)
    return receiver


@pytest.fixture
def stripe_client(stripe_fake: FakeStripe) -> stripe.StripeClient:
    """The official `stripe` client, pointed at `stripe_fake`."""
    return stripe_fake.client()
