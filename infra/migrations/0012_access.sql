-- Access (DESIGN §3 steps 1-2, §5, §8): the `generations:read` scope, a per-account version
-- of everything authentication reads, and no privileges for Supabase's API roles.

-- A key may read its account's generations (`GET /v1/generation`) without `chat`.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (scopes <@ ARRAY[
    'chat', 'images', 'models:read', 'generations:read', 'keys:read', 'keys:write',
    'billing:read', 'billing:write', 'history', 'referrals', 'coupons', 'admin']::text[]);

-- Warm functions cache what the key lookup returns. Any change to what it reads (a key, its
-- secrets, the membership of its user, the account's status or plan) bumps the account's
-- auth_version in the same transaction; the code that made the change then publishes the
-- new version to the rate-limit store, whose one call per request hands it to every warm
-- function, which then looks the key up again (gatewayz/auth.py).
ALTER TABLE accounts ADD COLUMN auth_version bigint NOT NULL DEFAULT 0;

-- For tables with an account_id column (api_keys, memberships).
CREATE FUNCTION bump_auth_version() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE accounts SET auth_version = auth_version + 1 WHERE id = OLD.account_id;
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE accounts SET auth_version = auth_version + 1 WHERE id = NEW.account_id;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.account_id IS DISTINCT FROM OLD.account_id THEN
            UPDATE accounts SET auth_version = auth_version + 1 WHERE id = NEW.account_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- For api_key_secrets, whose account is its key's. When the key itself is being deleted
-- (the cascade), the key is already gone and its own trigger bumped the version.
CREATE FUNCTION bump_auth_version_of_key() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE accounts SET auth_version = auth_version + 1
         WHERE id = (SELECT account_id FROM api_keys WHERE id = OLD.key_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.key_id IS DISTINCT FROM OLD.key_id) THEN
        UPDATE accounts SET auth_version = auth_version + 1
         WHERE id = (SELECT account_id FROM api_keys WHERE id = NEW.key_id);
    END IF;
    RETURN NULL;
END
$$;

-- The accounts row itself: a BEFORE trigger sets the new version on the row being written,
-- so no second UPDATE (and no recursion: the UPDATEs above set only auth_version, which
-- is not in this trigger's column list).
CREATE FUNCTION bump_own_auth_version() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    NEW.auth_version := OLD.auth_version + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER api_keys_created_or_deleted
    AFTER INSERT OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION bump_auth_version();
-- Every column the key lookup reads, and nothing the request path writes: settling a
-- request updates spent_nanos and last_used_at on every request, which must not send
-- every warm function back to the database. A new column that authentication reads
-- belongs here (tests/integration/test_auth_version.py lists the columns left out).
CREATE TRIGGER api_keys_changed
    AFTER UPDATE OF account_id, user_id, scopes, allowed_models, allowed_cidrs,
                    allowed_referers, requests_per_minute, requests_per_day, tokens_per_minute,
                    concurrent_requests, limits_set_by_admin, spend_limit_nanos, expires_at,
                    revoked_at
    ON api_keys
    FOR EACH ROW
    WHEN ((OLD.account_id, OLD.user_id, OLD.scopes, OLD.allowed_models, OLD.allowed_cidrs,
           OLD.allowed_referers, OLD.requests_per_minute, OLD.requests_per_day,
           OLD.tokens_per_minute, OLD.concurrent_requests, OLD.limits_set_by_admin,
           OLD.spend_limit_nanos, OLD.expires_at, OLD.revoked_at)
          IS DISTINCT FROM
          (NEW.account_id, NEW.user_id, NEW.scopes, NEW.allowed_models, NEW.allowed_cidrs,
           NEW.allowed_referers, NEW.requests_per_minute, NEW.requests_per_day,
           NEW.tokens_per_minute, NEW.concurrent_requests, NEW.limits_set_by_admin,
           NEW.spend_limit_nanos, NEW.expires_at, NEW.revoked_at))
    EXECUTE FUNCTION bump_auth_version();
CREATE TRIGGER api_key_secrets_changed
    AFTER INSERT OR UPDATE OR DELETE ON api_key_secrets
    FOR EACH ROW EXECUTE FUNCTION bump_auth_version_of_key();
CREATE TRIGGER memberships_changed
    AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION bump_auth_version();
CREATE TRIGGER accounts_access_changed
    BEFORE UPDATE OF status, plan_id ON accounts
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.plan_id IS DISTINCT FROM NEW.plan_id)
    EXECUTE FUNCTION bump_own_auth_version();

-- Supabase gives its API roles everything the migrating role creates in public, through
-- `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON ... TO anon, authenticated`, so
-- the functions of 0010 and later (which move money) were executable by them. Take it
-- all back, now and for whatever later migrations create.
DO $$
DECLARE
    api_role text;
BEGIN
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
    -- PUBLIC's EXECUTE on new functions is a global default, which a per-schema REVOKE
    -- cannot take away; this applies to what the migrating role creates, in any schema.
    ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', api_role);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', api_role);
        EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM %I', api_role);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM %I',
                       api_role);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM %I',
                       api_role);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM %I',
                       api_role);
    END LOOP;
END
$$;
