-- Key management (DESIGN §8): keys can be disabled (refused like revoked ones, but can be
-- enabled again), and a key's spending limit can reset on UTC calendar boundaries, as
-- OpenRouter's `limit_reset` does (days start at midnight UTC, weeks on Monday).

ALTER TABLE api_keys
    ADD COLUMN disabled    boolean NOT NULL DEFAULT false,
    ADD COLUMN limit_reset text CHECK (limit_reset IN ('daily', 'weekly', 'monthly')),
    -- spent_nanos counts what the key spent since this moment: its creation, or the start
    -- of the window it was last charged in when limit_reset is set.
    ADD COLUMN spent_since timestamptz NOT NULL DEFAULT now();

-- The start of the limit window that holds p_at; NULL (no reset) has a single window.
CREATE FUNCTION key_limit_window_start(p_reset text, p_at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = public AS $$
    SELECT CASE p_reset
        WHEN 'daily' THEN date_trunc('day', p_at, 'UTC')
        WHEN 'weekly' THEN date_trunc('week', p_at, 'UTC')
        WHEN 'monthly' THEN date_trunc('month', p_at, 'UTC')
    END
$$;

-- What a key spent in the window that holds now(): nothing yet when its count is from an
-- earlier window.
CREATE FUNCTION key_spent_in_window(p_spent bigint, p_since timestamptz, p_reset text)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = public AS $$
    SELECT CASE WHEN p_reset IS NOT NULL AND p_since < key_limit_window_start(p_reset, now())
                THEN 0 ELSE p_spent END
$$;

-- Settling adds a charge to spent_nanos. When the count is from an earlier window, keep
-- only the new charge and start the count at the current window. A statement that sets
-- spent_since itself (the keys route, recounting after limit_reset changed) is left alone.
CREATE FUNCTION api_keys_roll_spend_window() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    IF NEW.spent_since IS NOT DISTINCT FROM OLD.spent_since
       AND NEW.limit_reset IS NOT NULL
       AND OLD.spent_since < key_limit_window_start(NEW.limit_reset, now()) THEN
        NEW.spent_nanos := GREATEST(NEW.spent_nanos - OLD.spent_nanos, 0);
        NEW.spent_since := key_limit_window_start(NEW.limit_reset, now());
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER api_keys_spend_window
    BEFORE UPDATE OF spent_nanos ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_roll_spend_window();

-- Authentication now reads `disabled`: a change to it bumps the account's auth_version
-- like every other column the key lookup reads (0012).
DROP TRIGGER api_keys_changed ON api_keys;
CREATE TRIGGER api_keys_changed
    AFTER UPDATE OF account_id, user_id, scopes, allowed_models, allowed_cidrs,
                    allowed_referers, requests_per_minute, requests_per_day, tokens_per_minute,
                    concurrent_requests, limits_set_by_admin, spend_limit_nanos, expires_at,
                    revoked_at, disabled
    ON api_keys
    FOR EACH ROW
    WHEN ((OLD.account_id, OLD.user_id, OLD.scopes, OLD.allowed_models, OLD.allowed_cidrs,
           OLD.allowed_referers, OLD.requests_per_minute, OLD.requests_per_day,
           OLD.tokens_per_minute, OLD.concurrent_requests, OLD.limits_set_by_admin,
           OLD.spend_limit_nanos, OLD.expires_at, OLD.revoked_at, OLD.disabled)
          IS DISTINCT FROM
          (NEW.account_id, NEW.user_id, NEW.scopes, NEW.allowed_models, NEW.allowed_cidrs,
           NEW.allowed_referers, NEW.requests_per_minute, NEW.requests_per_day,
           NEW.tokens_per_minute, NEW.concurrent_requests, NEW.limits_set_by_admin,
           NEW.spend_limit_nanos, NEW.expires_at, NEW.revoked_at, NEW.disabled))
    EXECUTE FUNCTION bump_auth_version();

-- Reserving reads the key's spend in the current window (the rest is 0010's, unchanged).
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

REVOKE ALL ON FUNCTION key_limit_window_start(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION key_spent_in_window(bigint, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION api_keys_roll_spend_window() FROM PUBLIC;
