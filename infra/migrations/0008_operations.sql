-- Operations: who changed what (DESIGN §8), and e-mail waiting to be sent.

CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid REFERENCES accounts (id),
    actor_kind    text NOT NULL CHECK (actor_kind IN ('user', 'key', 'system', 'stripe')),
    actor_user_id uuid REFERENCES users (id),
    actor_key_id  uuid REFERENCES api_keys (id),
    action        text NOT NULL,
    target_type   text NOT NULL,
    target_id     text,
    before        jsonb,
    after         jsonb,
    ip            inet,
    request_id    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, created_at DESC);
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE email_outbox (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id          uuid REFERENCES accounts (id),
    to_address          text NOT NULL CHECK (to_address ~ '^[^@\s]+@[^@\s]+$'),
    template            text NOT NULL,
    subject             text NOT NULL,
    payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Same notice, same key: a job that runs twice queues one e-mail.
    dedupe_key          text UNIQUE,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error          text,
    send_after          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    provider_message_id text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_outbox_pending_idx ON email_outbox (send_after) WHERE status = 'pending';
