"""The Stripe stand-in: state behind one lock, every action's events delivered after it."""

from __future__ import annotations

import copy
import json
import threading
from functools import cached_property
from typing import TYPE_CHECKING

from gatewayz.dev.stripe_standin import events
from gatewayz.dev.stripe_standin.objects import Obj, Reply, State, StripeError, new_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import ASGIApp

    from gatewayz.dev.stripe_standin.events import Deliver

IDEMPOTENCY_MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were first"
    " used with. Try using a key other than '{key}' if you meant to execute a different request."
)


class StripeStandin:
    """A local, test-mode stand-in for the Stripe API (`app` is its ASGI app).

    Events are kept in order in `events`; each is delivered once, signed with
    `webhook_secret`, right after the action that made it: to `deliver` if given, else
    POSTed to `webhook_url` if given, else only recorded. Failed deliveries stay in
    `undelivered` until redelivered.
    """

    def __init__(
        self,
        webhook_secret: str,
        *,
        webhook_url: str | None = None,
        deliver: Deliver | None = None,
        api_key: str | None = None,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.deliver = (
            deliver if deliver is not None or webhook_url is None else (events.post_to(webhook_url))
        )
        self.api_key = api_key  # None: any `sk_test_…` key is accepted
        self.state = State()
        self.undelivered: dict[str, Obj] = {}
        self._lock = threading.RLock()
        self._replies: dict[str, tuple[str, Reply]] = {}

    @property
    def events(self) -> list[Obj]:
        """Every event so far, oldest first."""
        return self.state.events

    @cached_property
    def app(self) -> ASGIApp:
        from gatewayz.dev.stripe_standin import api

        return api.build(self)

    def run(
        self,
        action: Callable[[State], Obj],
        *,
        base_url: str | None = None,
        idempotency_key: str | None = None,
        fingerprint: str = "",
    ) -> Reply:
        """Run `action` on the state under the lock, then deliver the events it made.

        An idempotency key seen before replays the first reply (a different `fingerprint`,
        i.e. other parameters, is Stripe's 400 idempotency_error).
        """
        request_id = new_id("req")
        with self._lock:
            if idempotency_key is not None and idempotency_key in self._replies:
                seen, reply = self._replies[idempotency_key]
                if seen != fingerprint:
                    message = IDEMPOTENCY_MISMATCH.format(key=idempotency_key)
                    err = StripeError(400, message, type="idempotency_error")
                    return Reply(400, json.dumps(err.body()).encode(), request_id)
                return Reply(reply.status, reply.body, reply.request_id, replayed=True)
            if base_url is not None:
                self.state.base_url = base_url
            self.state.request_id, self.state.idempotency_key = request_id, idempotency_key
            try:
                status, body = 200, action(self.state)
            except StripeError as err:
                status, body = err.status, err.body()
            finally:
                made, self.state.pending = self.state.pending, []
                self.state.request_id = self.state.idempotency_key = None
            reply = Reply(status, json.dumps(body, indent=2).encode(), request_id)
            if idempotency_key is not None:
                self._replies[idempotency_key] = (fingerprint, reply)
        # Outside the lock: a webhook receiver may call back into the API.
        for event in made:
            self._send(event)
        return reply

    def _send(self, event: Obj) -> None:
        if self.deliver is None:
            return
        if events.send(self.deliver, event, self.webhook_secret):
            self.undelivered.pop(event["id"], None)
        else:
            self.undelivered[event["id"]] = event

    def redeliver(self, event_id: str) -> bool:
        """Deliver an event again (signed anew); True when the receiver took it.

        Raises:
            StripeError: 404 for an unknown event.
        """
        with self._lock:
            event = copy.deepcopy(self.state.get(event_id, "event"))
        self._send(event)
        return event_id not in self.undelivered

    def signed(self, event: Obj, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """An event's body and headers as delivered (for tests replaying or reordering)."""
        body = events.payload(event)
        return body, {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": events.signature(body, self.webhook_secret, timestamp),
        }
