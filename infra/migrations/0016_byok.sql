-- Bring-your-own-key (DESIGN §3, §8): an account's own provider keys, and the requests
-- they served.

-- The chat path keeps an account's (encrypted) provider keys with its cached key lookup,
-- so a change to them bumps the account's auth_version like a change to its API keys
-- (the route then announces it): the next request everywhere reads them again.
CREATE TRIGGER provider_credentials_changed
    AFTER INSERT OR UPDATE OR DELETE ON provider_credentials
    FOR EACH ROW EXECUTE FUNCTION bump_auth_version();

-- A request served with the account's own key: the provider bills the account directly
-- (upstream_cost_nanos, at the catalog's price) and cost_nanos is only the gateway's fee.
ALTER TABLE usage_records
    ADD COLUMN is_byok             boolean NOT NULL DEFAULT false,
    ADD COLUMN upstream_cost_nanos bigint CHECK (upstream_cost_nanos >= 0),
    ADD CONSTRAINT usage_records_byok_cost CHECK (is_byok OR upstream_cost_nanos IS NULL);

-- settle_usage for a request served with the account's own key: the same settlement,
-- and the usage row marked as such, in the same call (one round trip).
CREATE FUNCTION settle_byok_usage(
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
    p_usage_estimated     boolean,
    p_upstream_cost_nanos bigint
) RETURNS TABLE (usage_record_id uuid, balance_after_nanos bigint, charged_nanos bigint,
                 uncollected_nanos bigint)
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    s record;
BEGIN
    SELECT * INTO s FROM settle_usage(
        p_request_id, p_account_id, p_api_key_id, p_cost_nanos, p_fee_nanos, p_endpoint,
        p_model, p_provider, p_provider_model, p_upstream_id, p_input_tokens,
        p_cached_input_tokens, p_output_tokens, p_reasoning_tokens, p_images, p_latency_ms,
        p_upstream_latency_ms, p_ttft_ms, p_status, p_finish_reason, p_error_code, p_streamed,
        p_usage_estimated);
    UPDATE usage_records u SET is_byok = true, upstream_cost_nanos = p_upstream_cost_nanos
     WHERE u.id = s.usage_record_id;
    RETURN QUERY SELECT s.usage_record_id, s.balance_after_nanos, s.charged_nanos,
                        s.uncollected_nanos;
END
$$;

REVOKE ALL ON FUNCTION settle_byok_usage(text, uuid, uuid, bigint, bigint, text, text, text,
    text, text, integer, integer, integer, integer, integer, integer, integer, integer,
    integer, text, text, boolean, boolean, bigint) FROM PUBLIC;
