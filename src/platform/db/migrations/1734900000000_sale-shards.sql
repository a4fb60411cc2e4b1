-- Up Migration

-- A hot sale's stock may be split across several Redis slots (src/sales/shards.ts):
-- how many is fixed at creation; 1 is a sale as before.
ALTER TABLE sales ADD COLUMN shards smallint NOT NULL DEFAULT 1 CHECK (shards BETWEEN 1 AND 16);

-- Down Migration
ALTER TABLE sales DROP COLUMN shards;
