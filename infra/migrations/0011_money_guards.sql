-- Money that cannot leak (DESIGN §3 steps 5 and 8, §4).
--
-- * Settling never takes a balance below zero: a cost above the hold is charged up to
--   the hold plus the balance, and the rest is recorded as uncollected on the usage row.
-- * A long stream records its progress on its hold, so the sweeper charges a dead
--   function's delivered output instead of returning the whole hold.
-- * A request the sweeper already charged is settled for what is still due, never twice.
-- * Fees that are not tokens (web search, file parsing) have a price per request on the
--   offer, and images a per-model bound of the tokens one input image can count as.

ALTER TABLE usage_records
    ADD COLUMN fee_nanos         bigint NOT NULL DEFAULT 0 CHECK (fee_nanos >= 0),
    -- Part of cost_nanos that could not be charged (the balance ran out): must stay 0.
    ADD COLUMN uncollected_nanos bigint NOT NULL DEFAULT 0 CHECK (uncollected_nanos >= 0),
    -- The hold the request settled against (NULL: the sweeper had ended it): a cost above
    -- it means the hold did not bound what the provider produced.
    ADD COLUMN held_nanos        bigint CHECK (held_nanos >= 0),
    ADD CONSTRAINT usage_records_collectable CHECK (uncollected_nanos <= cost_nanos);
CREATE INDEX usage_records_uncollected_idx ON usage_records (created_at)
    WHERE uncollected_nanos > 0;

-- A sweeper's charge and a late settlement of the same request are two ledger entries of
-- one usage record.
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_usage_record_id_key;
CREATE INDEX credit_transactions_usage_record_idx ON credit_transactions (usage_record_id)
    WHERE usage_record_id IS NOT NULL;

-- A stream's progress: what it delivered so far and what that costs at the serving offer.
ALTER TABLE credit_holds
    ADD COLUMN charge_nanos   bigint NOT NULL DEFAULT 0 CHECK (charge_nanos >= 0),
    ADD COLUMN endpoint       text,
    ADD COLUMN model          text,
    ADD COLUMN provider       text,
    ADD COLUMN provider_model text,
    ADD COLUMN input_tokens   integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    ADD COLUMN output_tokens  integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    ADD COLUMN fee_nanos      bigint NOT NULL DEFAULT 0 CHECK (fee_nanos >= 0),
    ADD COLUMN progress_at    timestamptz,
    ADD CONSTRAINT credit_holds_progress_named CHECK (charge_nanos = 0 OR model IS NOT NULL);

-- The most tokens one input image can count as for this model (its provider's published
-- rule); NULL: the gateway's default bound, which no provider's rule exceeds.
ALTER TABLE models ADD COLUMN max_image_tokens integer CHECK (max_image_tokens > 0);

-- Upstream fees that are not tokens, USD per request, by feature: {"web_search": "0.02"}.
-- A request asking for a feature its offer does not price is refused, never passed free.
ALTER TABLE model_offers ADD COLUMN request_fees jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(request_fees) = 'object');

DROP FUNCTION settle_usage(text, uuid, uuid, bigint, text, text, text, text, text, integer,
    integer, integer, integer, integer, integer, integer, integer, integer, text, text,
    boolean, boolean);

-- Settle one request: release its hold, charge what it cost (never more than the hold
-- plus the balance), record the usage and the ledger entry, count the spend against the
-- key. A request the sweeper already charged (its usage row exists, its hold is gone) is
-- charged only what is still due, and its row updated.
CREATE FUNCTION settle_usage(
    p_request_id          text,
    p_account_id          uuid,
    p_api_key_id          uuid,
    p_cost_nanos          bigint,
    p_fee_nanos           bigint,
    p_endpoint            text,
    p_model               text,
    p_provider            text,
    p_provider_model      text,
    p_upstream_id         text,
    p_input_tokens        integer,
    p_cached_input_tokens integer,
    p_output_tokens       integer,
    p_reasoning_tokens    integer,
    p_images              integer,
    p_latency_ms          integer,
    p_upstream_latency_ms integer,
    p_ttft_ms             integer,
    p_status              integer,
    p_finish_reason       text,
    p_error_code          text,
    p_streamed            boolean,
    p_usage_estimated     boolean
) RETURNS TABLE (usage_record_id uuid, balance_after_nanos bigint, charged_nanos bigint,
                 uncollected_nanos bigint)
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    v_balance bigint;
    v_hold    bigint;
    v_usage   uuid;
    v_prior   bigint := 0;  -- what the sweeper already charged for this request
    v_cost    bigint;
    v_charge  bigint;
BEGIN
    IF p_cost_nanos < 0 OR p_fee_nanos < 0 OR p_fee_nanos > p_cost_nanos THEN
        RAISE EXCEPTION 'invalid cost % (fee %)', p_cost_nanos, p_fee_nanos
            USING ERRCODE = 'check_violation';
    END IF;
    -- The account row first: the lock every reserve, settle and sweep of it queues on.
    SELECT a.balance_nanos INTO v_balance FROM accounts a WHERE a.id = p_account_id FOR UPDATE;
    DELETE FROM credit_holds h WHERE h.request_id = p_request_id
        RETURNING h.amount_nanos INTO v_hold;
    IF v_hold IS NULL THEN
        SELECT u.id, u.cost_nanos - u.uncollected_nanos INTO v_usage, v_prior
          FROM usage_records u WHERE u.request_id = p_request_id FOR UPDATE;
        v_prior := COALESCE(v_prior, 0);
    END IF;
    v_cost := GREATEST(p_cost_nanos, v_prior);
    v_charge := LEAST(v_cost - v_prior, GREATEST(v_balance + COALESCE(v_hold, 0), 0));
    UPDATE accounts SET balance_nanos = balance_nanos + COALESCE(v_hold, 0) - v_charge
     WHERE id = p_account_id RETURNING balance_nanos INTO v_balance;
    IF v_usage IS NULL THEN
        INSERT INTO usage_records (
            request_id, account_id, api_key_id, endpoint, model, provider, provider_model,
            upstream_id, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
            images, cost_nanos, fee_nanos, uncollected_nanos, held_nanos, latency_ms,
            upstream_latency_ms, ttft_ms, status, finish_reason, error_code, streamed,
            usage_estimated)
        VALUES (
            p_request_id, p_account_id, p_api_key_id, p_endpoint, p_model, p_provider,
            p_provider_model, p_upstream_id, p_input_tokens, p_cached_input_tokens,
            p_output_tokens, p_reasoning_tokens, p_images, v_cost, p_fee_nanos,
            v_cost - v_charge, v_hold, p_latency_ms, p_upstream_latency_ms, p_ttft_ms,
            p_status, p_finish_reason, p_error_code, p_streamed, p_usage_estimated)
        RETURNING id INTO v_usage;
    ELSE
        UPDATE usage_records SET
            upstream_id = COALESCE(p_upstream_id, upstream_id),
            input_tokens = p_input_tokens, cached_input_tokens = p_cached_input_tokens,
            output_tokens = p_output_tokens, reasoning_tokens = p_reasoning_tokens,
            images = p_images, cost_nanos = v_cost, fee_nanos = p_fee_nanos,
            uncollected_nanos = v_cost - v_prior - v_charge, latency_ms = p_latency_ms,
            upstream_latency_ms = p_upstream_latency_ms, ttft_ms = p_ttft_ms,
            status = p_status, finish_reason = p_finish_reason, error_code = p_error_code,
            usage_estimated = p_usage_estimated
         WHERE id = v_usage;
    END IF;
    IF v_charge > 0 THEN
        INSERT INTO credit_transactions (
            account_id, kind, amount_nanos, balance_after_nanos, usage_record_id, api_key_id,
            description)
        VALUES (p_account_id, 'usage', -v_charge, v_balance, v_usage, p_api_key_id,
                p_endpoint || ' ' || p_model);
    END IF;
    IF p_api_key_id IS NOT NULL THEN
        UPDATE api_keys SET spent_nanos = spent_nanos + v_charge, last_used_at = now()
         WHERE id = p_api_key_id;
    END IF;
    RETURN QUERY SELECT v_usage, v_balance, v_charge, v_cost - v_prior - v_charge;
END
$$;

-- Record a stream's progress on its hold (a bounded number of times per stream). Returns
-- false when the hold is gone (already settled or swept).
CREATE FUNCTION record_progress(
    p_request_id     text,
    p_charge_nanos   bigint,
    p_fee_nanos      bigint,
    p_endpoint       text,
    p_model          text,
    p_provider       text,
    p_provider_model text,
    p_input_tokens   integer,
    p_output_tokens  integer
) RETURNS boolean
LANGUAGE sql SET search_path = public AS $$
    WITH moved AS (
        UPDATE credit_holds SET
            charge_nanos = p_charge_nanos, fee_nanos = p_fee_nanos, endpoint = p_endpoint,
            model = p_model, provider = p_provider, provider_model = p_provider_model,
            input_tokens = p_input_tokens, output_tokens = p_output_tokens,
            progress_at = now()
         WHERE request_id = p_request_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM moved)
$$;

DROP FUNCTION release_expired_holds();

-- The hold_sweeper job: end every hold past its expiry (its function died before
-- settling). A hold with recorded progress is charged that progress (never more than
-- the hold plus the balance) with a usage row marked `interrupted`; the rest of every
-- hold goes back to the balance. Account by account, each under its row lock, so it
-- queues behind (never deadlocks with) a settlement of the same account.
CREATE FUNCTION release_expired_holds()
RETURNS TABLE (holds integer, released_nanos bigint, charged_holds integer,
               charged_nanos bigint, uncollected_nanos bigint)
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    v_account     uuid;
    v_balance     bigint;
    v_charge      bigint;
    v_usage       uuid;
    h             record;
    n_holds       integer := 0;
    n_charged     integer := 0;
    v_released    bigint := 0;
    v_charged     bigint := 0;
    v_uncollected bigint := 0;
BEGIN
    FOR v_account IN
        SELECT DISTINCT c.account_id FROM credit_holds c WHERE c.expires_at <= now()
    LOOP
        SELECT a.balance_nanos INTO v_balance FROM accounts a WHERE a.id = v_account FOR UPDATE;
        FOR h IN
            DELETE FROM credit_holds c WHERE c.account_id = v_account AND c.expires_at <= now()
            RETURNING c.*
        LOOP
            n_holds := n_holds + 1;
            v_charge := LEAST(h.charge_nanos, GREATEST(v_balance + h.amount_nanos, 0));
            v_balance := v_balance + h.amount_nanos - v_charge;
            v_released := v_released + h.amount_nanos - v_charge;
            IF h.charge_nanos > 0 THEN
                n_charged := n_charged + 1;
                v_charged := v_charged + v_charge;
                v_uncollected := v_uncollected + h.charge_nanos - v_charge;
                INSERT INTO usage_records (
                    request_id, account_id, api_key_id, endpoint, model, provider,
                    provider_model, input_tokens, output_tokens, cost_nanos, fee_nanos,
                    uncollected_nanos, held_nanos, status, finish_reason, error_code, streamed,
                    usage_estimated)
                VALUES (
                    h.request_id, h.account_id, h.api_key_id, h.endpoint, h.model, h.provider,
                    h.provider_model, h.input_tokens, h.output_tokens, h.charge_nanos,
                    LEAST(h.fee_nanos, h.charge_nanos), h.charge_nanos - v_charge,
                    h.amount_nanos, 200, 'error', 'interrupted', true, true)
                RETURNING id INTO v_usage;
                IF v_charge > 0 THEN
                    INSERT INTO credit_transactions (
                        account_id, kind, amount_nanos, balance_after_nanos, usage_record_id,
                        api_key_id, description)
                    VALUES (h.account_id, 'usage', -v_charge, v_balance, v_usage, h.api_key_id,
                            h.endpoint || ' ' || h.model || ' (interrupted)');
                END IF;
                IF h.api_key_id IS NOT NULL THEN
                    UPDATE api_keys SET spent_nanos = spent_nanos + v_charge
                     WHERE id = h.api_key_id;
                END IF;
            END IF;
        END LOOP;
        UPDATE accounts SET balance_nanos = v_balance WHERE id = v_account;
    END LOOP;
    RETURN QUERY SELECT n_holds, v_released, n_charged, v_charged, v_uncollected;
END
$$;

REVOKE ALL ON FUNCTION settle_usage(text, uuid, uuid, bigint, bigint, text, text, text, text,
    text, integer, integer, integer, integer, integer, integer, integer, integer, integer,
    text, text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION record_progress(text, bigint, bigint, text, text, text, text, integer,
    integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION release_expired_holds() FROM PUBLIC;
