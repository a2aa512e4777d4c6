-- API keys (DESIGN §3 steps 1-2, §8). A key belongs to a member within an account.
-- Its secrets live apart so that rotation can keep the old secret working for a grace
-- period: authentication is one lookup by HMAC hash in api_key_secrets.

CREATE TABLE api_keys (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id          uuid NOT NULL REFERENCES accounts (id),
    user_id             uuid NOT NULL REFERENCES users (id),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    environment         text NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test')),
    -- Shown in lists so a person can tell keys apart; the secret is never stored.
    prefix              text NOT NULL,
    last4               text NOT NULL CHECK (length(last4) = 4),
    scopes              text[] NOT NULL CHECK (scopes <@ ARRAY[
                            'chat', 'images', 'models:read', 'keys:read', 'keys:write',
                            'billing:read', 'billing:write', 'history', 'referrals',
                            'coupons', 'admin']::text[]),
    allowed_models      text[],          -- NULL: every model
    allowed_cidrs       cidr[],          -- NULL: any client IP
    allowed_referers    text[],          -- NULL: any Referer/Origin
    -- Per-key limits; NULL takes the plan's. Above the plan only when an admin allowed it.
    requests_per_minute integer CHECK (requests_per_minute > 0),
    requests_per_day    integer CHECK (requests_per_day > 0),
    tokens_per_minute   integer CHECK (tokens_per_minute > 0),
    concurrent_requests integer CHECK (concurrent_requests > 0),
    limits_set_by_admin boolean NOT NULL DEFAULT false,
    spend_limit_nanos   bigint CHECK (spend_limit_nanos >= 0),
    spent_nanos         bigint NOT NULL DEFAULT 0 CHECK (spent_nanos >= 0),
    expires_at          timestamptz,
    revoked_at          timestamptz,
    rotation_period     interval CHECK (rotation_period >= interval '1 hour'),
    rotated_at          timestamptz,
    last_used_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_account_id_idx ON api_keys (account_id);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);
CREATE INDEX api_keys_rotation_idx ON api_keys (rotated_at)
    WHERE rotation_period IS NOT NULL AND revoked_at IS NULL;

CREATE TABLE api_key_secrets (
    -- HMAC-SHA256(secret, KEY_HASH_SECRET): 32 bytes, unique across all keys.
    hash       bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
    key_id     uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- NULL while current; set to the end of the grace period when rotated out.
    expires_at timestamptz
);
CREATE INDEX api_key_secrets_key_id_idx ON api_key_secrets (key_id);
-- One current secret per key.
CREATE UNIQUE INDEX api_key_secrets_one_current ON api_key_secrets (key_id) WHERE expires_at IS NULL;
