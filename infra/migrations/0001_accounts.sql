-- Accounts, the people in them, and what they pay for (DESIGN §4, §5).
-- An account is the billing entity: a person's own or a team's shared credit pool.

CREATE TABLE plans (
    id                    text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]*$'),
    name                  text NOT NULL,
    description           text NOT NULL DEFAULT '',
    kind                  text NOT NULL CHECK (kind IN ('trial', 'free', 'subscription', 'payg')),
    monthly_price_cents   integer NOT NULL DEFAULT 0 CHECK (monthly_price_cents >= 0),
    -- Granted once when a trial starts, or at each renewal of a subscription.
    included_credit_nanos bigint NOT NULL DEFAULT 0 CHECK (included_credit_nanos >= 0),
    trial_days            integer CHECK (trial_days > 0),
    requests_per_minute   integer NOT NULL CHECK (requests_per_minute > 0),
    requests_per_day      integer NOT NULL CHECK (requests_per_day > 0),
    tokens_per_minute     integer NOT NULL CHECK (tokens_per_minute > 0),
    concurrent_requests   integer NOT NULL CHECK (concurrent_requests > 0),
    max_keys              integer NOT NULL CHECK (max_keys > 0),
    stripe_price_id       text UNIQUE,
    is_public             boolean NOT NULL DEFAULT true,
    sort_order            integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'trial') = (trial_days IS NOT NULL)),
    CHECK (kind <> 'subscription' OR monthly_price_cents > 0)
);

CREATE TABLE accounts (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind                        text NOT NULL CHECK (kind IN ('personal', 'team')),
    name                        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    plan_id                     text NOT NULL REFERENCES plans (id),
    -- Spendable balance. Active holds are kept apart, so at all times
    -- balance_nanos + sum(active holds) = sum(ledger amounts) for the account.
    balance_nanos               bigint NOT NULL DEFAULT 0,
    status                      text NOT NULL DEFAULT 'active'
                                CHECK (status IN ('active', 'suspended', 'closed')),
    trial_started_at            timestamptz,
    trial_ends_at               timestamptz,
    stripe_customer_id          text UNIQUE,
    referral_code               text NOT NULL UNIQUE
                                DEFAULT upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 10))
                                CHECK (referral_code ~ '^[A-Z0-9]{6,32}$'),
    low_balance_threshold_nanos bigint CHECK (low_balance_threshold_nanos >= 0),
    low_balance_notified_at     timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK ((trial_started_at IS NULL) = (trial_ends_at IS NULL)),
    CHECK (trial_ends_at IS NULL OR trial_ends_at > trial_started_at)
);
CREATE INDEX accounts_trial_ends_at_idx ON accounts (trial_ends_at) WHERE trial_ends_at IS NOT NULL;

CREATE TABLE users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Supabase Auth's auth.users.id; NULL for users created by an operator.
    auth_user_id uuid UNIQUE,
    email        text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    display_name text,
    is_admin     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE memberships (
    account_id uuid NOT NULL REFERENCES accounts (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);
-- Exactly one owner per account at most; ownership moves, it is not shared.
CREATE UNIQUE INDEX memberships_one_owner ON memberships (account_id) WHERE role = 'owner';

CREATE TABLE subscriptions (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id             uuid NOT NULL REFERENCES accounts (id),
    plan_id                text NOT NULL REFERENCES plans (id),
    stripe_subscription_id text UNIQUE,
    status                 text NOT NULL CHECK (status IN (
                               'incomplete', 'incomplete_expired', 'trialing', 'active',
                               'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    canceled_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_account_id_idx ON subscriptions (account_id);
-- One live subscription per account.
CREATE UNIQUE INDEX subscriptions_one_live ON subscriptions (account_id)
    WHERE status IN ('trialing', 'active', 'past_due', 'unpaid', 'paused');
