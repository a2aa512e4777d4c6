-- The key's spending window helpers (0015) as expressions PostgreSQL inlines into the
-- statement that calls them. A SQL function with a SET clause is never inlined: each
-- statement calling it parsed and planned its body again (PostgreSQL 15 keeps no plan of
-- a SQL function across statements), some 50 µs of every `reserve_credits` of a key.
-- Without the clause the body is planned once, inside the caller's plan: the caller's
-- search_path (`reserve_credits` sets its own) resolves nothing here but pg_catalog's
-- built-ins and the schema-qualified helper.

CREATE OR REPLACE FUNCTION key_limit_window_start(p_reset text, p_at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE p_reset
        WHEN 'daily' THEN pg_catalog.date_trunc('day', p_at, 'UTC')
        WHEN 'weekly' THEN pg_catalog.date_trunc('week', p_at, 'UTC')
        WHEN 'monthly' THEN pg_catalog.date_trunc('month', p_at, 'UTC')
    END
$$;

CREATE OR REPLACE FUNCTION key_spent_in_window(p_spent bigint, p_since timestamptz, p_reset text)
RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_reset IS NOT NULL
                 AND p_since < public.key_limit_window_start(p_reset, pg_catalog.now())
                THEN 0 ELSE p_spent END
$$;

-- Settling updates the key's spent_nanos; the trigger that rolls its window has work only
-- for a key with a `limit_reset` whose count the statement did not restart itself. Said
-- in its WHEN, the check costs no call of the plpgsql function on every other settle.
DROP TRIGGER api_keys_spend_window ON api_keys;
CREATE TRIGGER api_keys_spend_window
    BEFORE UPDATE OF spent_nanos ON api_keys
    FOR EACH ROW
    WHEN (NEW.limit_reset IS NOT NULL AND NEW.spent_since IS NOT DISTINCT FROM OLD.spent_since)
    EXECUTE FUNCTION api_keys_roll_spend_window();
