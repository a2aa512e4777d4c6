-- The chat path's money (DESIGN §3 steps 5 and 8): reserve before the call, settle after,
-- sweep what was never settled. One function call each, so one round trip each.

ALTER TABLE usage_records
    ADD COLUMN upstream_id     text,     -- the provider's completion id (`chatcmpl-...`)
    ADD COLUMN usage_estimated boolean NOT NULL DEFAULT false;  -- the provider reported none
CREATE INDEX usage_records_upstream_idx ON usage_records (account_id, upstream_id)
    WHERE upstream_id IS NOT NULL;

-- Every request inserts a hold and deletes it moments later: vacuum the table often, or
-- the in-flight counts below wade through dead rows.
ALTER TABLE credit_holds SET (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);

-- Hold up to p_max_nanos (never less than p_min_nanos) of the account's balance for one
-- request. The hold is what the balance (and the key's spending limit, net of its other
-- holds) can cover, so a caller may lower max_tokens to fit. Requests in flight are the
-- account's (and key's) live holds, so concurrency is limited here too.
-- Returns (hold_nanos, NULL) or (NULL, reason): 'credits', 'in_flight', 'key_limit',
-- 'concurrency', 'key_concurrency', 'account_inactive', 'no_account'.
CREATE FUNCTION reserve_credits(
    p_account_id      uuid,
    p_api_key_id      uuid,
    p_request_id      text,
    p_max_nanos       bigint,
    p_min_nanos       bigint,
    p_ttl_seconds     integer,
    p_concurrency     integer,
    p_key_concurrency integer
) RETURNS TABLE (hold_nanos bigint, refusal text)
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    v_balance  bigint;
    v_status   text;
    v_room     bigint;
    v_limit    bigint;
    v_spent    bigint;
    v_amount   bigint;
    v_inflight integer;
BEGIN
    -- The account row is the lock every reserve and settle of this account queues on.
    SELECT a.balance_nanos, a.status INTO v_balance, v_status
      FROM accounts a WHERE a.id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::bigint, 'no_account'::text; RETURN;
    END IF;
    IF v_status <> 'active' THEN
        RETURN QUERY SELECT NULL::bigint, 'account_inactive'::text; RETURN;
    END IF;
    IF p_concurrency IS NOT NULL THEN
        SELECT count(*) INTO v_inflight FROM credit_holds h
         WHERE h.account_id = p_account_id AND h.expires_at > now();
        IF v_inflight >= p_concurrency THEN
            RETURN QUERY SELECT NULL::bigint, 'concurrency'::text; RETURN;
        END IF;
    END IF;
    IF p_key_concurrency IS NOT NULL THEN
        SELECT count(*) INTO v_inflight FROM credit_holds h
         WHERE h.api_key_id = p_api_key_id AND h.expires_at > now();
        IF v_inflight >= p_key_concurrency THEN
            RETURN QUERY SELECT NULL::bigint, 'key_concurrency'::text; RETURN;
        END IF;
    END IF;

    v_room := v_balance;
    IF p_api_key_id IS NOT NULL THEN
        SELECT k.spend_limit_nanos, k.spent_nanos INTO v_limit, v_spent
          FROM api_keys k WHERE k.id = p_api_key_id FOR UPDATE;
        IF v_limit IS NOT NULL THEN
            IF v_limit - v_spent < p_min_nanos THEN
                RETURN QUERY SELECT NULL::bigint, 'key_limit'::text; RETURN;
            END IF;
            v_room := LEAST(v_room, v_limit - v_spent - COALESCE(
                (SELECT sum(h.amount_nanos) FROM credit_holds h WHERE h.api_key_id = p_api_key_id), 0));
        END IF;
    END IF;

    v_amount := LEAST(p_max_nanos, GREATEST(v_room, 0));
    IF v_amount < p_min_nanos THEN
        -- Would the money be there without the requests still in flight?
        IF v_balance + COALESCE((SELECT sum(h.amount_nanos) FROM credit_holds h
                                  WHERE h.account_id = p_account_id), 0) >= p_min_nanos
           AND (v_limit IS NULL OR v_limit - v_spent >= p_min_nanos) THEN
            RETURN QUERY SELECT NULL::bigint, 'in_flight'::text; RETURN;
        END IF;
        RETURN QUERY SELECT NULL::bigint,
            CASE WHEN v_room < v_balance THEN 'key_limit' ELSE 'credits' END; RETURN;
    END IF;

    -- A hold needs no fsync before the request goes on: if the database lost this commit
    -- in a crash, it lost the hold and its deduction together (and settling then charges
    -- the balance directly). Settlements keep the durable default.
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE accounts SET balance_nanos = balance_nanos - v_amount WHERE id = p_account_id;
    INSERT INTO credit_holds (account_id, api_key_id, request_id, amount_nanos, expires_at)
    VALUES (p_account_id, p_api_key_id, p_request_id, v_amount,
            now() + make_interval(secs => p_ttl_seconds));
    RETURN QUERY SELECT v_amount, NULL::text;
END
$$;

-- Settle one request: release its hold, charge the actual cost, record the usage and the
-- ledger entry, count the spend against the key. Unique request ids make a second
-- settlement of the same request fail whole, so nothing is charged twice. A hold the
-- sweeper already released is simply absent: the cost is then charged from the balance.
CREATE FUNCTION settle_usage(
    p_request_id          text,
    p_account_id          uuid,
    p_api_key_id          uuid,
    p_cost_nanos          bigint,
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
) RETURNS TABLE (usage_record_id uuid, balance_after_nanos bigint)
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    v_hold    bigint;
    v_balance bigint;
    v_usage   uuid;
BEGIN
    IF p_cost_nanos < 0 THEN
        RAISE EXCEPTION 'negative cost %', p_cost_nanos USING ERRCODE = 'check_violation';
    END IF;
    DELETE FROM credit_holds h WHERE h.request_id = p_request_id RETURNING h.amount_nanos INTO v_hold;
    UPDATE accounts SET balance_nanos = balance_nanos + COALESCE(v_hold, 0) - p_cost_nanos
     WHERE id = p_account_id RETURNING balance_nanos INTO v_balance;
    INSERT INTO usage_records (
        request_id, account_id, api_key_id, endpoint, model, provider, provider_model,
        upstream_id, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, images,
        cost_nanos, latency_ms, upstream_latency_ms, ttft_ms, status, finish_reason, error_code,
        streamed, usage_estimated)
    VALUES (
        p_request_id, p_account_id, p_api_key_id, p_endpoint, p_model, p_provider, p_provider_model,
        p_upstream_id, p_input_tokens, p_cached_input_tokens, p_output_tokens, p_reasoning_tokens,
        p_images, p_cost_nanos, p_latency_ms, p_upstream_latency_ms, p_ttft_ms, p_status,
        p_finish_reason, p_error_code, p_streamed, p_usage_estimated)
    RETURNING id INTO v_usage;
    IF p_cost_nanos > 0 THEN
        INSERT INTO credit_transactions (
            account_id, kind, amount_nanos, balance_after_nanos, usage_record_id, api_key_id,
            description)
        VALUES (p_account_id, 'usage', -p_cost_nanos, v_balance, v_usage, p_api_key_id,
                p_endpoint || ' ' || p_model);
    END IF;
    IF p_api_key_id IS NOT NULL THEN
        UPDATE api_keys SET spent_nanos = spent_nanos + p_cost_nanos, last_used_at = now()
         WHERE id = p_api_key_id;
    END IF;
    RETURN QUERY SELECT v_usage, v_balance;
END
$$;

-- The hold_sweeper job: give back every hold past its expiry (a function that crashed
-- before settling). One statement; returns how many holds and nanos it released.
CREATE FUNCTION release_expired_holds() RETURNS TABLE (holds integer, released_nanos bigint)
LANGUAGE sql SET search_path = public AS $$
    WITH gone AS (
        DELETE FROM credit_holds WHERE expires_at <= now()
        RETURNING account_id, amount_nanos
    ), per_account AS (
        SELECT account_id, sum(amount_nanos) AS amount, count(*) AS n FROM gone GROUP BY account_id
    ), refunded AS (
        UPDATE accounts a SET balance_nanos = a.balance_nanos + p.amount
          FROM per_account p WHERE a.id = p.account_id
        RETURNING p.amount, p.n
    )
    SELECT COALESCE(sum(n), 0)::integer, COALESCE(sum(amount), 0)::bigint FROM refunded
$$;

REVOKE ALL ON FUNCTION reserve_credits(uuid, uuid, text, bigint, bigint, integer, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION settle_usage(text, uuid, uuid, bigint, text, text, text, text, text, integer, integer, integer, integer, integer, integer, integer, integer, integer, text, text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION release_expired_holds() FROM PUBLIC;
