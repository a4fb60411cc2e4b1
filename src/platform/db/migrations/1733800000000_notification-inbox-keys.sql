-- Up Migration

-- The inbox is only ever reached by buyer (a page, the SSE resume, marking
-- read, the cap), so its primary key is (recipient_id, seq): that one index
-- serves every such read in both directions, and a fan-out's row costs three
-- index entries instead of five. The unread index goes with it: marking all
-- read scans the buyer's rows, which the cap bounds. Age is swept by the
-- scheduler (src/notifications/retention.ts) through a BRIN index on
-- created_at, a few pages for the whole table, since rows arrive in time
-- order. `seq` stays an identity: unique, and a buyer's order.
ALTER TABLE notifications DROP CONSTRAINT notifications_pkey;
ALTER TABLE notifications ADD PRIMARY KEY (recipient_id, seq);
DROP INDEX notifications_inbox;
DROP INDEX notifications_unread;
CREATE INDEX notifications_age ON notifications USING brin (created_at) WITH (autosummarize = on);

-- Down Migration
DROP INDEX notifications_age;
CREATE INDEX notifications_unread ON notifications (recipient_id, seq) WHERE read_at IS NULL;
CREATE INDEX notifications_inbox ON notifications (recipient_id, seq DESC);
ALTER TABLE notifications DROP CONSTRAINT notifications_pkey;
ALTER TABLE notifications ADD PRIMARY KEY (seq);
