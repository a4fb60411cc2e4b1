-- Up Migration

-- The webhook retention sweep (src/webhooks/retention.ts) finds the oldest
-- done messages (delivered, or failed for good) without reading the pending
-- ones or the whole table.
CREATE INDEX webhook_deliveries_done_age ON webhook_deliveries (created_at) WHERE status <> 'pending';

-- Down Migration
DROP INDEX webhook_deliveries_done_age;
