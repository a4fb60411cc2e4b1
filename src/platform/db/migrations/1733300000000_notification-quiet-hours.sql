-- Up Migration

-- Quiet hours: an e-mail or SMS told inside the buyer's quiet hours is kept
-- until they end (`not_before`, null: at once). The channel worker that
-- finds it early sends nothing and asks again at that time; it is never
-- dropped.
ALTER TABLE notification_emails ADD COLUMN not_before timestamptz;
ALTER TABLE notification_sms ADD COLUMN not_before timestamptz;

-- Down Migration
ALTER TABLE notification_sms DROP COLUMN not_before;
ALTER TABLE notification_emails DROP COLUMN not_before;
