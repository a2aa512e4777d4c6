"""A verified Stripe webhook event, as the handlers see it (`gatewayz.billing.stripe_events`)."""

from __future__ import annotations

from typing import Any

from gatewayz.record import record


@record
class Event:
    """A verified Stripe event: its id, type, creation time (Unix seconds) and object."""

    id: str
    type: str
    created: int
    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


def ref(value: Any) -> str | None:
    """A Stripe reference in an object: an id, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
