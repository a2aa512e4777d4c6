"""The Stripe API client (docs/architecture.md, money): one per process, built on first use.

`STRIPE_API_BASE` points it at another Stripe (the local stand-in, a test fake). Calls go
over httpx with a timeout and Stripe's own network retries, which resend the same
idempotency key, so a retried create never makes two objects. `stripe` is imported here,
inside the functions, so the chat function never loads it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gatewayz import config

if TYPE_CHECKING:
    import stripe

TIMEOUT_S = 20.0
NETWORK_RETRIES = 2


def client() -> stripe.StripeClient:
    """The process's Stripe client.

    Raises:
        MissingConfiguration: `STRIPE_SECRET_KEY` is unset (503 naming it).
    """
    settings = config.get_settings()
    return _client(config.require("stripe_secret_key"), settings.stripe_api_base)


@lru_cache(maxsize=4)
def _client(secret_key: str, api_base: str | None) -> stripe.StripeClient:
    import stripe

    addresses: dict[str, Any] = {"api": api_base.rstrip("/")} if api_base else {}
    return stripe.StripeClient(
        secret_key,
        base_addresses=addresses,  # type: ignore[arg-type]
        http_client=stripe.HTTPXClient(timeout=TIMEOUT_S, allow_sync_methods=True),
        max_network_retries=NETWORK_RETRIES,
    )


def as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object (or a plain mapping from an event) as plain dicts and lists."""
    if hasattr(obj, "to_dict"):
        result: dict[str, Any] = obj.to_dict()
        return result
    return dict(obj)
