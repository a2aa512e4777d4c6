-- Coupons (docs/api.md, coupons): a `credit` coupon grants a fixed amount; a `percent`
-- coupon takes a percentage off the account's next credit purchase (the Stripe checkout
-- charges less, the full credit is granted). A coupon may be for one user (by id or by
-- e-mail) and may be redeemed up to `max_per_user` times by each user.

ALTER TABLE coupons
    ADD COLUMN kind         text NOT NULL DEFAULT 'credit' CHECK (kind IN ('credit', 'percent')),
    ADD COLUMN percent_off  integer CHECK (percent_off BETWEEN 1 AND 100),
    ADD COLUMN max_per_user integer NOT NULL DEFAULT 1 CHECK (max_per_user > 0),
    -- For one user: by their id, or by an e-mail address (stored lower-case) that may
    -- not have signed up yet. Neither: for everyone.
    ADD COLUMN user_id      uuid REFERENCES users (id),
    ADD COLUMN email        text CHECK (email = lower(email) AND length(email) <= 320),
    ADD CONSTRAINT coupons_one_user_check CHECK (num_nonnulls(user_id, email) <= 1);
ALTER TABLE coupons ALTER COLUMN amount_nanos DROP NOT NULL;
ALTER TABLE coupons DROP CONSTRAINT coupons_amount_nanos_check;
ALTER TABLE coupons ADD CONSTRAINT coupons_kind_value_check CHECK (
    CASE kind WHEN 'credit' THEN amount_nanos > 0 AND percent_off IS NULL
              ELSE amount_nanos IS NULL AND percent_off IS NOT NULL END);
CREATE INDEX coupons_created_idx ON coupons (created_at DESC, id DESC);

-- A redemption is the user's n-th of the coupon: UNIQUE (coupon, user, n) with
-- n <= the coupon's per-user maximum (copied here when redeemed) enforces both "once
-- per redemption" and "at most max_per_user", whatever runs concurrently.
ALTER TABLE coupon_redemptions DROP CONSTRAINT coupon_redemptions_coupon_id_account_id_key;
ALTER TABLE coupon_redemptions ALTER COLUMN amount_nanos DROP NOT NULL;
ALTER TABLE coupon_redemptions DROP CONSTRAINT coupon_redemptions_amount_nanos_check;
ALTER TABLE coupon_redemptions
    ADD COLUMN n            integer NOT NULL DEFAULT 1,
    ADD COLUMN max_per_user integer NOT NULL DEFAULT 1,
    ADD COLUMN kind         text NOT NULL DEFAULT 'credit' CHECK (kind IN ('credit', 'percent')),
    -- credit: `granted` at once; percent: `attached` to the account's next checkout,
    -- `consumed` when a checkout carrying it is paid (`payment_id`).
    ADD COLUMN status       text NOT NULL DEFAULT 'granted'
                            CHECK (status IN ('granted', 'attached', 'consumed')),
    ADD COLUMN percent_off  integer CHECK (percent_off BETWEEN 1 AND 100),
    -- The checkout the attached discount is on (while pending), or the one that used it.
    ADD COLUMN payment_id   uuid REFERENCES payments (id),
    ADD COLUMN consumed_at  timestamptz,
    ADD CONSTRAINT coupon_redemptions_n_check CHECK (n BETWEEN 1 AND max_per_user),
    ADD CONSTRAINT coupon_redemptions_per_user_key UNIQUE (coupon_id, user_id, n),
    ADD CONSTRAINT coupon_redemptions_value_check CHECK (
        CASE kind WHEN 'credit' THEN amount_nanos > 0 AND percent_off IS NULL
                                     AND status = 'granted'
                  ELSE amount_nanos IS NULL AND percent_off IS NOT NULL
                       AND status IN ('attached', 'consumed') END),
    ADD CONSTRAINT coupon_redemptions_consumed_check CHECK (
        (status = 'consumed') = (consumed_at IS NOT NULL)
        AND (status <> 'consumed' OR payment_id IS NOT NULL));
-- One percent coupon attached to an account at a time.
CREATE UNIQUE INDEX coupon_redemptions_one_attached ON coupon_redemptions (account_id)
    WHERE status = 'attached';
CREATE INDEX coupon_redemptions_coupon_idx ON coupon_redemptions (coupon_id);
CREATE INDEX coupon_redemptions_list_idx ON coupon_redemptions (account_id, created_at DESC, id DESC);
CREATE INDEX payments_coupon_idx ON payments (coupon_id) WHERE coupon_id IS NOT NULL;
