"""The stand-in under `gatewayz dev`: served at `/_stripe` on the dev server when
`STRIPE_SECRET_KEY` is unset, with the functions' Stripe settings pointed at it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from gatewayz import config
from gatewayz.dev.stripe_standin.standin import StripeStandin

if TYPE_CHECKING:
    from pathlib import Path

PREFIX = "/_stripe"
SECRET_KEY = "sk_test_local_standin"  # noqa: S105 - public and local: no real key looks so


def start(host: str, port: int) -> StripeStandin | None:
    """A stand-in for this dev server, or None when a real `STRIPE_SECRET_KEY` is set.

    Sets `STRIPE_SECRET_KEY`, `STRIPE_API_BASE` and `STRIPE_WEBHOOK_SECRET` (kept, else
    generated once into the state directory) for the functions in this process; events go
    to `/webhooks/stripe` on the same server, through the real webhooks function.
    """
    if config.get_settings().stripe_secret_key is not None:
        return None
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a comparison
    base = f"http://{reach}:{port}"
    secret = config.local_stripe_webhook_secret()
    os.environ["STRIPE_SECRET_KEY"] = SECRET_KEY
    os.environ["STRIPE_API_BASE"] = base + PREFIX
    os.environ["STRIPE_WEBHOOK_SECRET"] = secret
    config.get_settings.cache_clear()
    return StripeStandin(secret, webhook_url=f"{base}/webhooks/stripe", api_key=SECRET_KEY)


def describe(standin: StripeStandin, home: Path) -> str:
    """The start-up line saying Stripe is the local stand-in, and where its secret is."""
    saved = home / "stripe_webhook_secret"
    where = (
        f"the secret in {saved}"
        if saved.is_file() and saved.read_text().strip() == standin.webhook_secret
        else "STRIPE_WEBHOOK_SECRET"
    )
    return (
        "stripe: the local Stripe stand-in (test mode, as STRIPE_SECRET_KEY is unset) at"
        f" {os.environ['STRIPE_API_BASE']}; checkout links open its Pay page, events go to"
        f" /webhooks/stripe signed with {where}"
    )
