-- Stripe: payments we were paid, and every webhook event we received (DESIGN §4).
-- Each Stripe id is UNIQUE so a replayed or reordered webhook can never credit twice.

CREATE TABLE payments (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id                 uuid NOT NULL REFERENCES accounts (id),
    kind                       text NOT NULL CHECK (kind IN ('credit_purchase', 'subscription')),
    stripe_checkout_session_id text UNIQUE,
    stripe_payment_intent_id   text UNIQUE,
    stripe_invoice_id          text UNIQUE,
    amount_cents               bigint NOT NULL CHECK (amount_cents >= 0),
    currency                   text NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$'),
    credit_nanos               bigint NOT NULL DEFAULT 0 CHECK (credit_nanos >= 0),
    refunded_cents             bigint NOT NULL DEFAULT 0,
    status                     text NOT NULL CHECK (status IN (
                                   'pending', 'succeeded', 'failed', 'expired',
                                   'refunded', 'partially_refunded', 'disputed')),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK (refunded_cents BETWEEN 0 AND amount_cents),
    CHECK (num_nonnulls(stripe_checkout_session_id, stripe_payment_intent_id, stripe_invoice_id) > 0)
);
CREATE INDEX payments_account_idx ON payments (account_id, created_at DESC);

CREATE TABLE stripe_events (
    id           text PRIMARY KEY CHECK (id LIKE 'evt_%'),
    type         text NOT NULL,
    livemode     boolean NOT NULL DEFAULT false,
    api_version  text,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
