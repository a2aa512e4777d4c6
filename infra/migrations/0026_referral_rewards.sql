-- Referrals (docs/api.md, referrals): every user has a code; a new user applies one; both
-- sides are rewarded when the referred account's first qualifying purchase is paid.

-- A user's code: 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L, U),
-- stored upper case; clients may type it in any case.
CREATE FUNCTION new_referral_code() RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = public AS $$
DECLARE
    alphabet constant text := '23456789ABCDEFGHJKMNPQRSTVWXYZ';
    -- The random bytes of a version 4 UUID (bytes 6 and 8 carry its version and variant).
    raw  bytea := decode(replace(gen_random_uuid()::text, '-', ''), 'hex');
    code text := '';
    i    integer;
BEGIN
    FOREACH i IN ARRAY ARRAY[0, 1, 2, 3, 4, 5, 9, 10] LOOP
        code := code || substr(alphabet, 1 + get_byte(raw, i) % 30, 1);
    END LOOP;
    RETURN code;
END
$$;

-- A trigger rather than a column default, so a (very unlikely) collision draws again
-- instead of failing the sign-up.
CREATE FUNCTION users_referral_code() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    IF NEW.referral_code IS NULL THEN
        LOOP
            NEW.referral_code := new_referral_code();
            EXIT WHEN NOT EXISTS (SELECT 1 FROM users WHERE referral_code = NEW.referral_code);
        END LOOP;
    END IF;
    RETURN NEW;
END
$$;

ALTER TABLE users ADD COLUMN referral_code text;
UPDATE users SET referral_code = new_referral_code();
ALTER TABLE users
    ALTER COLUMN referral_code SET NOT NULL,
    ADD CONSTRAINT users_referral_code_check CHECK (referral_code ~ '^[2-9A-HJKMNP-TV-Z]{8}$');
CREATE UNIQUE INDEX users_referral_code_key ON users (referral_code);
CREATE TRIGGER users_referral_code
    BEFORE INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_referral_code();

-- Who referred whom (users, and the personal accounts the rewards go to), what each side
-- got, the purchase that decided it, and why a referral was voided.
ALTER TABLE referrals DROP CONSTRAINT referrals_status_check;
ALTER TABLE referrals DROP CONSTRAINT referrals_check1;
ALTER TABLE referrals
    ADD COLUMN referrer_user_id      uuid REFERENCES users (id),
    ADD COLUMN referred_user_id      uuid UNIQUE REFERENCES users (id),
    ADD COLUMN referred_reward_nanos bigint NOT NULL DEFAULT 0 CHECK (referred_reward_nanos >= 0),
    ADD COLUMN payment_id            uuid REFERENCES payments (id),
    ADD COLUMN void_reason           text CHECK (void_reason IN (
                                         'same_user', 'same_account', 'same_stripe_customer',
                                         'same_card', 'referrer_cap_count',
                                         'referrer_cap_total', 'referrer_inactive')),
    ADD COLUMN voided_at             timestamptz,
    -- A rewarded purchase refunded in full or disputed takes both rewards back.
    ADD COLUMN reversed_at           timestamptz,
    ADD CONSTRAINT referrals_status_check
        CHECK (status IN ('pending', 'rewarded', 'void', 'reversed')),
    ADD CONSTRAINT referrals_rewarded_check
        CHECK ((status IN ('rewarded', 'reversed')) = (rewarded_at IS NOT NULL)),
    ADD CONSTRAINT referrals_reversed_check CHECK ((status = 'reversed') = (reversed_at IS NOT NULL)),
    ADD CONSTRAINT referrals_void_check
        CHECK ((status = 'void') = (void_reason IS NOT NULL AND voided_at IS NOT NULL));
CREATE INDEX referrals_referrer_user_idx ON referrals (referrer_user_id, created_at DESC, id DESC);
CREATE INDEX referrals_payment_idx ON referrals (payment_id) WHERE payment_id IS NOT NULL;

-- The card and the Stripe customer that paid: a referral whose purchase was paid with
-- the referrer's card or customer is voided.
ALTER TABLE payments
    ADD COLUMN card_fingerprint   text,
    ADD COLUMN stripe_customer_id text;
CREATE INDEX payments_card_fingerprint_idx ON payments (account_id, card_fingerprint)
    WHERE card_fingerprint IS NOT NULL;

REVOKE ALL ON FUNCTION new_referral_code() FROM PUBLIC;
REVOKE ALL ON FUNCTION users_referral_code() FROM PUBLIC;
