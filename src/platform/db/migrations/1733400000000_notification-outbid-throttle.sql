-- Up Migration

-- The outbid throttle. A buyer has one outbid notification per auction in
-- the inbox, updated in place to the latest price (older duplicates are
-- folded into the newest first). Their outbid e-mails carry the auction as
-- `throttle_key`, so at most one is recorded per (buyer, auction) and
-- window.
DELETE FROM notifications n USING notifications newer
 WHERE n.type = 'auction.outbid' AND newer.type = 'auction.outbid' AND newer.recipient_id = n.recipient_id
   AND newer.data->>'auctionId' = n.data->>'auctionId' AND newer.seq > n.seq;
CREATE UNIQUE INDEX notifications_outbid_per_auction ON notifications (recipient_id, (data->>'auctionId')) WHERE type = 'auction.outbid';

ALTER TABLE notification_emails ADD COLUMN throttle_key text COLLATE "C";
CREATE INDEX notification_emails_throttle ON notification_emails (recipient_id, throttle_key, created_at) WHERE throttle_key IS NOT NULL;

-- Down Migration
DROP INDEX notification_emails_throttle;
ALTER TABLE notification_emails DROP COLUMN throttle_key;
DROP INDEX notifications_outbid_per_auction;
