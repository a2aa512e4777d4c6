-- Billing: Stripe purchases and subscriptions, spending controls, auto top-up, trial
-- expiry and e-mail preferences. Columns and tables only; the SQL functions that use
-- them come in the migrations after this one.

-- Trial expiry removes unspent trial credit: a debit kind of its own, so the ledger
-- says why the balance fell.
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_kind_check;
ALTER TABLE credit_transactions ADD CONSTRAINT credit_transactions_kind_check CHECK (kind IN (
    'trial', 'purchase', 'subscription', 'coupon', 'referral', 'admin_grant',
    'usage', 'refund', 'dispute', 'admin_debit', 'trial_expiry'));
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_check;
ALTER TABLE credit_transactions ADD CONSTRAINT credit_transactions_sign_check CHECK (
    CASE WHEN kind IN ('usage', 'refund', 'dispute', 'admin_debit', 'trial_expiry')
         THEN amount_nanos < 0 ELSE amount_nanos > 0 END);

ALTER TABLE accounts
    -- Spending controls: a monthly cap on usage (calendar month, UTC), and e-mail alerts
    -- when the month's usage passes each threshold the account set.
    ADD COLUMN monthly_spend_limit_nanos bigint CHECK (monthly_spend_limit_nanos > 0),
    ADD COLUMN month_spent_nanos bigint NOT NULL DEFAULT 0 CHECK (month_spent_nanos >= 0),
    ADD COLUMN month_spent_since timestamptz NOT NULL
        DEFAULT (date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    ADD COLUMN spend_alert_thresholds_nanos bigint[] NOT NULL DEFAULT '{}',
    -- Auto top-up: below the threshold, charge the saved card this much, once per crossing
    -- (armed again when the balance is back at or above the threshold).
    ADD COLUMN auto_topup_threshold_nanos bigint CHECK (auto_topup_threshold_nanos >= 0),
    ADD COLUMN auto_topup_amount_cents bigint CHECK (auto_topup_amount_cents > 0),
    ADD COLUMN auto_topup_armed boolean NOT NULL DEFAULT true,
    ADD COLUMN stripe_payment_method_id text,
    -- Notices the account turned off: {"low_balance": false, ...}; essential ones ignore it.
    ADD COLUMN email_preferences jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(email_preferences) = 'object'),
    ADD COLUMN trial_converted_at timestamptz,
    ADD COLUMN trial_expired_at timestamptz,
    ADD CONSTRAINT accounts_auto_topup_check
        CHECK ((auto_topup_threshold_nanos IS NULL) = (auto_topup_amount_cents IS NULL));
CREATE INDEX accounts_auto_topup_idx ON accounts (id)
    WHERE auto_topup_threshold_nanos IS NOT NULL AND auto_topup_armed;
CREATE INDEX accounts_low_balance_idx ON accounts (id)
    WHERE low_balance_threshold_nanos IS NOT NULL;

-- Credit packs a checkout can name instead of an amount (seeded from infra/seed/).
CREATE TABLE credit_packs (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]*$'),
    name         text NOT NULL,
    price_cents  bigint NOT NULL CHECK (price_cents > 0),
    credit_nanos bigint NOT NULL CHECK (credit_nanos > 0),
    is_active    boolean NOT NULL DEFAULT true,
    sort_order   integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A payment row is written, with the credit it grants, before the customer is sent to
-- Stripe: it may have no Stripe id yet while pending.
ALTER TABLE payments DROP CONSTRAINT payments_check1;
ALTER TABLE payments ADD CONSTRAINT payments_stripe_ref_check CHECK (
    status = 'pending'
    OR num_nonnulls(stripe_checkout_session_id, stripe_payment_intent_id, stripe_invoice_id) > 0);
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check
    CHECK (kind IN ('credit_purchase', 'subscription', 'auto_topup'));
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN (
    'pending', 'succeeded', 'failed', 'expired', 'canceled',
    'refunded', 'partially_refunded', 'disputed'));
ALTER TABLE payments
    ADD COLUMN user_id                uuid REFERENCES users (id),
    ADD COLUMN pack_id                text REFERENCES credit_packs (id),
    ADD COLUMN plan_id                text REFERENCES plans (id),
    ADD COLUMN coupon_id              uuid REFERENCES coupons (id),
    ADD COLUMN discount_cents         bigint NOT NULL DEFAULT 0 CHECK (discount_cents >= 0),
    ADD COLUMN stripe_subscription_id text,
    ADD COLUMN stripe_charge_id       text UNIQUE,
    -- What the ledger got from this payment, and what refunds and disputes took back:
    -- webhooks compare these with the state Stripe reports, so order does not matter.
    ADD COLUMN granted_nanos          bigint NOT NULL DEFAULT 0 CHECK (granted_nanos >= 0),
    ADD COLUMN reversed_nanos         bigint NOT NULL DEFAULT 0 CHECK (reversed_nanos >= 0),
    ADD COLUMN disputed_cents         bigint NOT NULL DEFAULT 0 CHECK (disputed_cents >= 0),
    ADD COLUMN failure_message        text,
    ADD COLUMN paid_at                timestamptz;
CREATE INDEX payments_subscription_idx ON payments (stripe_subscription_id)
    WHERE stripe_subscription_id IS NOT NULL;
-- One auto top-up in flight per account.
CREATE UNIQUE INDEX payments_one_pending_topup ON payments (account_id)
    WHERE kind = 'auto_topup' AND status = 'pending';

ALTER TABLE stripe_events ADD COLUMN account_id uuid REFERENCES accounts (id);

ALTER TABLE subscriptions ADD COLUMN stripe_price_id text;

ALTER TABLE email_outbox ADD COLUMN html text, ADD COLUMN text_body text;

ALTER TABLE credit_packs ENABLE ROW LEVEL SECURITY;
