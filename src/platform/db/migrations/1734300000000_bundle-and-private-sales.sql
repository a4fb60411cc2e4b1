-- Up Migration

-- A bundle sale sells several items as one unit at one price: the price is
-- computed once, at creation, and stored in unit_price (what Redis decides
-- with and settlement charges); `bundle` keeps the breakdown the sale's view
-- shows (items, subtotal, discount and its amount).
ALTER TABLE sales ADD COLUMN bundle jsonb;
-- A private sale is bought, and seen, only by the buyers on its list.
ALTER TABLE sales ADD COLUMN private boolean NOT NULL DEFAULT false;

CREATE TABLE sale_eligible_buyers (
  sale_id   text COLLATE "C" NOT NULL REFERENCES sales (id),
  buyer_id  text COLLATE "C" NOT NULL,
  PRIMARY KEY (sale_id, buyer_id)
);
-- GET /v1/sales?eligible=true: the private sales one buyer may buy.
CREATE INDEX sale_eligible_buyers_buyer ON sale_eligible_buyers (buyer_id, sale_id);

-- Down Migration
DROP TABLE sale_eligible_buyers;
ALTER TABLE sales DROP COLUMN private;
ALTER TABLE sales DROP COLUMN bundle;
