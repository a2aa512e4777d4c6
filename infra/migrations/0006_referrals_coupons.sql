-- Referrals and coupons: grants whose rules keep them from paying out twice.

CREATE TABLE referrals (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    referrer_account_id uuid NOT NULL REFERENCES accounts (id),
    -- An account can be referred once.
    referred_account_id uuid NOT NULL UNIQUE REFERENCES accounts (id),
    code                text NOT NULL,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rewarded', 'void')),
    reward_nanos        bigint NOT NULL DEFAULT 0 CHECK (reward_nanos >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    rewarded_at         timestamptz,
    CHECK (referrer_account_id <> referred_account_id),
    CHECK ((status = 'rewarded') = (rewarded_at IS NOT NULL))
);
CREATE INDEX referrals_referrer_idx ON referrals (referrer_account_id);

CREATE TABLE coupons (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code             text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9_-]{3,64}$'),
    description      text NOT NULL DEFAULT '',
    amount_nanos     bigint NOT NULL CHECK (amount_nanos > 0),
    max_redemptions  integer CHECK (max_redemptions > 0),
    redemption_count integer NOT NULL DEFAULT 0,
    valid_from       timestamptz,
    expires_at       timestamptz,
    is_active        boolean NOT NULL DEFAULT true,
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (redemption_count >= 0 AND (max_redemptions IS NULL OR redemption_count <= max_redemptions)),
    CHECK (expires_at IS NULL OR valid_from IS NULL OR expires_at > valid_from)
);

CREATE TABLE coupon_redemptions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    coupon_id    uuid NOT NULL REFERENCES coupons (id),
    account_id   uuid NOT NULL REFERENCES accounts (id),
    user_id      uuid REFERENCES users (id),
    amount_nanos bigint NOT NULL CHECK (amount_nanos > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- A coupon pays an account once.
    UNIQUE (coupon_id, account_id)
);
CREATE INDEX coupon_redemptions_account_idx ON coupon_redemptions (account_id);
