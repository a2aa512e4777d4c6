-- Idempotent retries (docs/api.md, idempotent retries): the first answer to a request sent
-- with an `Idempotency-Key`, kept 24 h per account and key so a retry of the same request
-- replays it instead of running (and charging) again.
--
-- A row is `running` while its first request is served (`claim` names that attempt, so a
-- request that outlived its lease cannot overwrite the one that took over), then
-- `completed` with the answer: a JSON body, or the SSE events of a stream. A first
-- request that failed before anything was charged leaves no row. A `running` row past
-- `lease_until` (its request crashed) or any row past `expires_at` is taken over by the
-- next claim and deleted by the hold sweeper.
CREATE TABLE idempotency_records (
    id              bigserial PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL CHECK (length(request_hash) = 32),
    claim           uuid NOT NULL,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    response_status integer CHECK (response_status BETWEEN 100 AND 599),
    response_headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    response_body   bytea CHECK (length(response_body) <= 4194304),
    created_at      timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    UNIQUE (account_id, key),
    CHECK (status = 'running' OR response_status IS NOT NULL)
);

CREATE INDEX idempotency_records_expires_at ON idempotency_records (expires_at);

ALTER TABLE idempotency_records ENABLE ROW LEVEL SECURITY;
