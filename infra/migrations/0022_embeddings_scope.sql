-- The `embeddings` scope (POST /v1/embeddings). New keys get it by default. An existing key
-- that holds every scope a default key held before it existed was made with the defaults
-- ("everything but admin"), so it gets the new one too; a key its owner narrowed keeps
-- exactly the scopes it was given.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (scopes <@ ARRAY[
    'chat', 'images', 'embeddings', 'models:read', 'generations:read', 'keys:read',
    'keys:write', 'billing:read', 'billing:write', 'history', 'referrals', 'coupons',
    'admin']::text[]);

UPDATE api_keys
   SET scopes = array_append(scopes, 'embeddings')
 WHERE scopes @> ARRAY['chat', 'images', 'models:read', 'generations:read', 'keys:read',
                       'keys:write', 'billing:read', 'billing:write', 'history', 'referrals',
                       'coupons']::text[]
   AND NOT scopes @> ARRAY['embeddings']::text[];
