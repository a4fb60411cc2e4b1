-- Up Migration

-- An order's amount is its quantity times its unit price, and neither is
-- negative: a malformed event can never mint money through an order row.
-- NOT VALID: enforced on every new row at once; rows written before this
-- migration are not rescanned (a large table stays available), and an
-- operator validates them with VALIDATE CONSTRAINT after checking them.
ALTER TABLE orders
  ADD CONSTRAINT orders_unit_price_nonnegative CHECK (unit_price >= 0) NOT VALID,
  ADD CONSTRAINT orders_amount_is_quantity_times_price CHECK (amount = quantity::bigint * unit_price) NOT VALID;

-- Down Migration
ALTER TABLE orders DROP CONSTRAINT orders_amount_is_quantity_times_price, DROP CONSTRAINT orders_unit_price_nonnegative;
