-- A price of 'NaN' passes `>= 0` (PostgreSQL sorts NaN above every number) and would make
-- every request for the offer fail while pricing it. Prices are finite and not negative.
-- (numeric(20, 9) already refuses Infinity.)
ALTER TABLE model_offers
    ADD CONSTRAINT model_offers_input_price_finite CHECK (input_price <> 'NaN'),
    ADD CONSTRAINT model_offers_cached_input_price_finite CHECK (cached_input_price <> 'NaN'),
    ADD CONSTRAINT model_offers_output_price_finite CHECK (output_price <> 'NaN'),
    ADD CONSTRAINT model_offers_reasoning_price_finite CHECK (reasoning_price <> 'NaN'),
    ADD CONSTRAINT model_offers_image_price_finite CHECK (image_price <> 'NaN');
