-- Sign-up with a Supabase Auth session: one trial per e-mail address,
-- ever, and the dates of closed accounts and of users who left.

-- Who had a trial, by the SHA-256 of the normalised e-mail address: the address itself is
-- not kept, so the row can outlive the account and the user's anonymisation, and a new
-- account for the same address never gets a second trial.
CREATE TABLE trial_claims (
    email_digest bytea PRIMARY KEY CHECK (octet_length(email_digest) = 32),
    account_id   uuid REFERENCES accounts (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE trial_claims ENABLE ROW LEVEL SECURITY;

-- Closing an account keeps its row and ledger; its keys are revoked and it stops serving.
ALTER TABLE accounts ADD COLUMN closed_at timestamptz;
-- A user who closed their personal account: e-mail replaced, Supabase id cleared.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
