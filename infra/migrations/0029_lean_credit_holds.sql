-- A hold is written by every billed request before its provider is called and deleted
-- when it settles; each index on credit_holds is one more insertion on that path. The
-- row is found by its request id, so that is its key: the surrogate `id` (its own index,
-- and a random uuid drawn per hold) was never read. Expired holds are found by the
-- sweeper once a minute among the few rows in flight, which a scan reads as fast as an
-- index would, so `expires_at` needs none either. The account's and the key's indexes stay:
-- `reserve_credits` counts and sums the holds of one account or key on every request.

ALTER TABLE credit_holds
    DROP CONSTRAINT credit_holds_pkey,
    DROP COLUMN id,
    DROP CONSTRAINT credit_holds_request_id_key,
    ADD CONSTRAINT credit_holds_pkey PRIMARY KEY (request_id);
DROP INDEX credit_holds_expires_idx;
