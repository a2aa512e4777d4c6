-- Spending limits (DESIGN §4): an account's monthly spending limit, enforced where
-- credits are held, and counted where requests are charged; and plan limits that apply
-- at once when an operator changes them.
--
-- The month is the calendar month in UTC. `accounts.month_spent_nanos` is what the
-- month since `month_spent_since` was charged; a charge in a later month starts it again
-- from 0, and reading it before then counts it as 0, so no job has to reset it.

-- 0015's reserve_credits, and the monthly limit: the hold is at most the limit less this
-- month's spend less the account's other holds. A request that cannot fit even with no
-- other request in flight is refused with 'spend_limit'.
CREATE OR REPLACE FUNCTION reserve_credits(
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
    v_key_room bigint;
    -- The month's spending limit, and what this UTC month has spent so far.
    v_month_limit bigint;
    v_month_spent bigint;
    v_month_start timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
    -- The account row is the lock every reserve and settle of this account queues on.
    SELECT a.balance_nanos, a.status, a.monthly_spend_limit_nanos,
           CASE WHEN a.month_spent_since < v_month_start THEN 0 ELSE a.month_spent_nanos END
      INTO v_balance, v_status, v_month_limit, v_month_spent
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
        SELECT k.spend_limit_nanos, key_spent_in_window(k.spent_nanos, k.spent_since, k.limit_reset)
          INTO v_limit, v_spent
          FROM api_keys k WHERE k.id = p_api_key_id FOR UPDATE;
        IF v_limit IS NOT NULL THEN
            IF v_limit - v_spent < p_min_nanos THEN
                RETURN QUERY SELECT NULL::bigint, 'key_limit'::text; RETURN;
            END IF;
            v_room := LEAST(v_room, v_limit - v_spent - COALESCE(
                (SELECT sum(h.amount_nanos) FROM credit_holds h WHERE h.api_key_id = p_api_key_id), 0));
        END IF;
    END IF;
    v_key_room := v_room;

    -- The account's monthly spending limit: what this month spent and what its requests
    -- in flight hold both count, so parallel requests cannot overshoot it together.
    IF v_month_limit IS NOT NULL THEN
        IF v_month_limit - v_month_spent < p_min_nanos THEN
            RETURN QUERY SELECT NULL::bigint, 'spend_limit'::text; RETURN;
        END IF;
        v_room := LEAST(v_room, v_month_limit - v_month_spent - COALESCE(
            (SELECT sum(h.amount_nanos) FROM credit_holds h WHERE h.account_id = p_account_id), 0));
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
            CASE WHEN v_key_room < v_balance THEN 'key_limit' ELSE 'credits' END; RETURN;
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

-- 0011's settle_usage, and the charge counted in the month's spend (settle_byok_usage
-- calls it, so requests served with the account's own key count their fee too).
CREATE OR REPLACE FUNCTION settle_usage(
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
    v_month   timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
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
    -- The month's spend restarts at 0 with the first charge of a new UTC month.
    UPDATE accounts SET balance_nanos = balance_nanos + COALESCE(v_hold, 0) - v_charge,
           month_spent_nanos = v_charge
               + CASE WHEN month_spent_since < v_month THEN 0 ELSE month_spent_nanos END,
           month_spent_since = GREATEST(month_spent_since, v_month)
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

-- 0011's release_expired_holds, and what it charges counted in the month's spend.
CREATE OR REPLACE FUNCTION release_expired_holds()
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
    v_spent       bigint;  -- what this account was charged in this sweep
    v_month       timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
    FOR v_account IN
        SELECT DISTINCT c.account_id FROM credit_holds c WHERE c.expires_at <= now()
    LOOP
        SELECT a.balance_nanos INTO v_balance FROM accounts a WHERE a.id = v_account FOR UPDATE;
        v_spent := 0;
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
                v_spent := v_spent + v_charge;
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
        UPDATE accounts SET balance_nanos = v_balance,
               month_spent_nanos = v_spent
                   + CASE WHEN month_spent_since < v_month THEN 0 ELSE month_spent_nanos END,
               month_spent_since = GREATEST(month_spent_since, v_month)
         WHERE id = v_account;
    END LOOP;
    RETURN QUERY SELECT n_holds, v_released, n_charged, v_charged, v_uncollected;
END
$$;

-- The key lookup caches the limits of the account's plan (requests and tokens per
-- minute, requests per day, concurrency). A change to them bumps the auth_version of
-- every account on the plan, in the same transaction; the route that made the change
-- then announces the new versions, and the next request of each account reads them.
CREATE FUNCTION bump_auth_version_of_plan() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    UPDATE accounts SET auth_version = auth_version + 1 WHERE plan_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER plans_limits_changed
    AFTER UPDATE OF requests_per_minute, requests_per_day, tokens_per_minute,
                    concurrent_requests
    ON plans
    FOR EACH ROW
    WHEN ((OLD.requests_per_minute, OLD.requests_per_day, OLD.tokens_per_minute,
           OLD.concurrent_requests)
          IS DISTINCT FROM
          (NEW.requests_per_minute, NEW.requests_per_day, NEW.tokens_per_minute,
           NEW.concurrent_requests))
    EXECUTE FUNCTION bump_auth_version_of_plan();

REVOKE ALL ON FUNCTION bump_auth_version_of_plan() FROM PUBLIC;
