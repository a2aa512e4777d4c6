"""A local, test-mode stand-in for the Stripe API (`gatewayz dev` and the tests' fake).

The official `stripe` client works against it unmodified (`STRIPE_API_BASE`): customers,
checkout sessions, payment intents, refunds, subscriptions, invoices, billing portal
sessions and events, with a local checkout page whose Pay button completes the session and
delivers Stripe-signed events to a webhook endpoint. See docs/testing.md.
"""

from gatewayz.dev.stripe_standin.objects import API_VERSION, Reply, StripeError
from gatewayz.dev.stripe_standin.standin import StripeStandin

__all__ = ["API_VERSION", "Reply", "StripeError", "StripeStandin"]
