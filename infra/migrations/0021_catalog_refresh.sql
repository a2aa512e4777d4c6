-- The catalog kept current from the providers' model lists (`catalog_refresh`).
--
-- `models.listed_by`: the provider whose list created the model and keeps its metadata
-- (name, context, modalities, parameters) current; NULL for models from infra/seed/ or an
-- operator, whose metadata a refresh never changes.
ALTER TABLE models ADD COLUMN listed_by text CHECK (listed_by ~ '^[a-z][a-z0-9_-]*$');

-- `model_offers.retired_at`: set when a refresh found the offer no longer listed (the row
-- stays, inactive, so old usage rows still explain themselves). Only such an offer comes
-- back when its provider lists it again; one an operator switched off stays off.
ALTER TABLE model_offers ADD COLUMN retired_at timestamptz;

-- Every change of an offer's price, whoever made it (a refresh, `gatewayz seed`, SQL), so
-- the price behind any usage row can be found later: the latest change at or before it.
-- No foreign key: the history outlives a deleted offer.
CREATE TABLE model_price_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    offer_id    uuid NOT NULL,
    model_id    text NOT NULL,
    provider    text NOT NULL,
    price       text NOT NULL
                CHECK (price IN ('input', 'cached_input', 'output', 'reasoning', 'image')),
    old_price   numeric(20, 9),  -- NULL: the offer had no such price (or did not exist)
    new_price   numeric(20, 9),
    source      text NOT NULL,   -- 'catalog_refresh', 'seed', 'baseline', or 'sql'
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_price_changes_offer_idx ON model_price_changes (model_id, provider, changed_at);
ALTER TABLE model_price_changes ENABLE ROW LEVEL SECURITY;

-- The writer names itself with `SET LOCAL gatewayz.price_source = '...'`.
CREATE FUNCTION record_offer_price_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    writer text := coalesce(nullif(current_setting('gatewayz.price_source', true), ''), 'sql');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO model_price_changes (offer_id, model_id, provider, price, old_price,
                                         new_price, source)
        SELECT NEW.id, NEW.model_id, NEW.provider, c.price, NULL, c.new_price, writer
          FROM (VALUES ('input', NEW.input_price), ('cached_input', NEW.cached_input_price),
                       ('output', NEW.output_price), ('reasoning', NEW.reasoning_price),
                       ('image', NEW.image_price)) AS c (price, new_price)
         WHERE c.new_price IS NOT NULL;
    ELSE
        INSERT INTO model_price_changes (offer_id, model_id, provider, price, old_price,
                                         new_price, source)
        SELECT NEW.id, NEW.model_id, NEW.provider, c.price, c.old_price, c.new_price, writer
          FROM (VALUES ('input', OLD.input_price, NEW.input_price),
                       ('cached_input', OLD.cached_input_price, NEW.cached_input_price),
                       ('output', OLD.output_price, NEW.output_price),
                       ('reasoning', OLD.reasoning_price, NEW.reasoning_price),
                       ('image', OLD.image_price, NEW.image_price))
               AS c (price, old_price, new_price)
         WHERE c.old_price IS DISTINCT FROM c.new_price;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER model_offers_price_history
    AFTER INSERT OR UPDATE OF input_price, cached_input_price, output_price, reasoning_price,
                              image_price ON model_offers
    FOR EACH ROW EXECUTE FUNCTION record_offer_price_changes();

-- The prices in force now, so the history is complete from this migration on.
INSERT INTO model_price_changes (offer_id, model_id, provider, price, old_price, new_price,
                                 source)
SELECT o.id, o.model_id, o.provider, c.price, NULL, c.new_price, 'baseline'
  FROM model_offers o
 CROSS JOIN LATERAL (VALUES ('input', o.input_price), ('cached_input', o.cached_input_price),
                            ('output', o.output_price), ('reasoning', o.reasoning_price),
                            ('image', o.image_price)) AS c (price, new_price)
 WHERE c.new_price IS NOT NULL;

REVOKE ALL ON FUNCTION record_offer_price_changes() FROM PUBLIC;
