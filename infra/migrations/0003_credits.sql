-- Money (DESIGN §4): the append-only ledger, holds for requests in flight, and the
-- usage record each charge points at. Amounts are integer nano-dollars (1e-9 USD).
-- Invariant, per account: accounts.balance_nanos + sum(credit_holds.amount_nanos)
--                         = sum(credit_transactions.amount_nanos).

CREATE TABLE usage_records (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id          text NOT NULL UNIQUE,
    account_id          uuid NOT NULL REFERENCES accounts (id),
    api_key_id          uuid REFERENCES api_keys (id),
    endpoint            text NOT NULL,
    model               text NOT NULL,
    provider            text,
    provider_model      text,
    input_tokens        integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    cached_input_tokens integer NOT NULL DEFAULT 0 CHECK (cached_input_tokens >= 0),
    output_tokens       integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    reasoning_tokens    integer NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
    images              integer NOT NULL DEFAULT 0 CHECK (images >= 0),
    cost_nanos          bigint NOT NULL DEFAULT 0 CHECK (cost_nanos >= 0),
    latency_ms          integer CHECK (latency_ms >= 0),
    upstream_latency_ms integer CHECK (upstream_latency_ms >= 0),
    ttft_ms             integer CHECK (ttft_ms >= 0),
    status              integer NOT NULL CHECK (status BETWEEN 100 AND 599),
    finish_reason       text,
    error_code          text,
    streamed            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_account_idx ON usage_records (account_id, created_at DESC);
CREATE INDEX usage_records_key_idx ON usage_records (api_key_id, created_at DESC);

CREATE TABLE credit_transactions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id          uuid NOT NULL REFERENCES accounts (id),
    kind                text NOT NULL CHECK (kind IN (
                            'trial', 'purchase', 'subscription', 'coupon', 'referral', 'admin_grant',
                            'usage', 'refund', 'dispute', 'admin_debit')),
    amount_nanos        bigint NOT NULL CHECK (amount_nanos <> 0),
    balance_after_nanos bigint NOT NULL,
    -- The outside fact this entry records (a Stripe event, a checkout session, a coupon
    -- redemption, a trial): unique, so a replay can never credit twice.
    external_ref        text UNIQUE,
    idempotency_key     text,
    usage_record_id     uuid UNIQUE REFERENCES usage_records (id),
    api_key_id          uuid REFERENCES api_keys (id),
    actor_user_id       uuid REFERENCES users (id),
    description         text NOT NULL DEFAULT '',
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- Grants add, debits subtract.
    CHECK (CASE WHEN kind IN ('usage', 'refund', 'dispute', 'admin_debit')
                THEN amount_nanos < 0 ELSE amount_nanos > 0 END),
    CHECK (kind <> 'usage' OR usage_record_id IS NOT NULL)
);
CREATE INDEX credit_transactions_account_idx ON credit_transactions (account_id, created_at DESC);
CREATE UNIQUE INDEX credit_transactions_idempotency ON credit_transactions (account_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE credit_holds (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id),
    api_key_id  uuid REFERENCES api_keys (id),
    request_id  text NOT NULL UNIQUE,
    amount_nanos bigint NOT NULL CHECK (amount_nanos >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX credit_holds_account_idx ON credit_holds (account_id);
CREATE INDEX credit_holds_key_idx ON credit_holds (api_key_id);
CREATE INDEX credit_holds_expires_idx ON credit_holds (expires_at);

-- The ledger and the audit log are append-only: history is corrected by new entries.
CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER credit_transactions_append_only
    BEFORE UPDATE OR DELETE ON credit_transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Post one ledger entry and move the balance with it, atomically. Returns the entry's
-- id, or NULL when `p_external_ref` was already posted (a replay changes nothing).
-- A debit larger than the balance raises 'insufficient_funds' (SQLSTATE GW402) unless
-- `p_allow_negative` (a dispute must be recorded even when the money is gone).
CREATE FUNCTION ledger_post(
    p_account_id      uuid,
    p_kind            text,
    p_amount_nanos    bigint,
    p_external_ref    text DEFAULT NULL,
    p_idempotency_key text DEFAULT NULL,
    p_description     text DEFAULT '',
    p_metadata        jsonb DEFAULT '{}'::jsonb,
    p_actor_user_id   uuid DEFAULT NULL,
    p_allow_negative  boolean DEFAULT false
) RETURNS bigint
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    v_balance bigint;
    v_id      bigint;
BEGIN
    IF p_external_ref IS NOT NULL
       AND EXISTS (SELECT 1 FROM credit_transactions WHERE external_ref = p_external_ref) THEN
        RETURN NULL;
    END IF;
    -- One block, so a concurrent post of the same reference that wins the unique index
    -- rolls back our balance change with our insert.
    BEGIN
        UPDATE accounts
           SET balance_nanos = balance_nanos + p_amount_nanos
         WHERE id = p_account_id
           AND (p_amount_nanos > 0 OR p_allow_negative OR balance_nanos + p_amount_nanos >= 0)
        RETURNING balance_nanos INTO v_balance;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM accounts WHERE id = p_account_id) THEN
                RAISE EXCEPTION 'insufficient funds in account %', p_account_id
                    USING ERRCODE = 'GW402';
            END IF;
            RAISE EXCEPTION 'no account %', p_account_id USING ERRCODE = 'foreign_key_violation';
        END IF;
        INSERT INTO credit_transactions (
            account_id, kind, amount_nanos, balance_after_nanos, external_ref,
            idempotency_key, description, metadata, actor_user_id)
        VALUES (
            p_account_id, p_kind, p_amount_nanos, v_balance, p_external_ref,
            p_idempotency_key, p_description, p_metadata, p_actor_user_id)
        RETURNING id INTO v_id;
    EXCEPTION WHEN unique_violation THEN
        RETURN NULL;
    END;
    RETURN v_id;
END
$$;
