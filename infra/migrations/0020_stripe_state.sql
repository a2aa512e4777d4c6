-- Stripe webhooks act by state (docs/api.md, webhooks): a subscription row remembers the
-- creation time of the event that last set it, so an older event delivered late never
-- overwrites newer state.
ALTER TABLE subscriptions ADD COLUMN stripe_event_at timestamptz;
