-- The model catalog (DESIGN §3 step 4): a model is what clients ask for; an offer is
-- one provider serving it at a price. An offer without a known price does not exist:
-- never free by accident. Prices are USD per million tokens (per image for images).

CREATE TABLE models (
    id                   text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9._:-]+$'),
    name                 text NOT NULL,
    description          text NOT NULL DEFAULT '',
    context_length       integer NOT NULL CHECK (context_length > 0),
    max_output_tokens    integer CHECK (max_output_tokens > 0),
    input_modalities     text[] NOT NULL DEFAULT '{text}',
    output_modalities    text[] NOT NULL DEFAULT '{text}',
    supported_parameters text[] NOT NULL DEFAULT '{}',
    is_active            boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_offers (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id           text NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    provider           text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_-]*$'),
    provider_model_id  text NOT NULL,
    priority           integer NOT NULL DEFAULT 100,  -- lower is tried first
    input_price        numeric(20, 9) CHECK (input_price >= 0),
    cached_input_price numeric(20, 9) CHECK (cached_input_price >= 0),
    output_price       numeric(20, 9) CHECK (output_price >= 0),
    reasoning_price    numeric(20, 9) CHECK (reasoning_price >= 0),
    image_price        numeric(20, 9) CHECK (image_price >= 0),
    context_length     integer CHECK (context_length > 0),
    max_output_tokens  integer CHECK (max_output_tokens > 0),
    is_active          boolean NOT NULL DEFAULT true,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, provider),
    -- A text offer prices input and output; an image offer prices images.
    CHECK ((input_price IS NOT NULL AND output_price IS NOT NULL) OR image_price IS NOT NULL)
);
CREATE INDEX model_offers_model_idx ON model_offers (model_id, priority) WHERE is_active;

-- Bring-your-own-key: an account's own provider key, Fernet-encrypted with ENCRYPTION_KEYS.
CREATE TABLE provider_credentials (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id),
    provider      text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_-]*$'),
    encrypted_key text NOT NULL,
    key_last4     text NOT NULL,
    created_by    uuid REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, provider)
);
