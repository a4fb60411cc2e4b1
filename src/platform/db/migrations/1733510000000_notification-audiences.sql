-- Up Migration

-- The sales each buyer watches: `sale.opening` is told to a sale's watchers
-- (read by sale, in buyer order, for a fan-out: notifications'
-- saleWatchersOf / audienceAfter). PUT and DELETE /v1/sales/{id}/watch keep it.
-- A buyer's row goes when they stop watching; the sale's id is checked
-- against sales when watched (an unknown sale is a 404), not by a key here,
-- as buyer_interests does not reference users.
CREATE TABLE sale_watches (
  sale_id     text COLLATE "C" NOT NULL,
  buyer_id    text COLLATE "C" NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sale_id, buyer_id)
);

-- A fan-out: one notification told to an audience (a collection's
-- followers, a sale's watchers, or listed buyers), chunk by chunk in buyer
-- id order. `told_through` is the last buyer id whose rows are committed
-- (each chunk moves it in the transaction that writes the chunk's rows), so
-- a fan-out that stopped resumes after it; `requested_through` is the last
-- buyer id whose e-mail and SMS requests the broker confirmed. The counts
-- are what the committed chunks recorded: recipients in the audience, inbox
-- rows, e-mails and SMS.
CREATE TABLE notification_fanouts (
  event_id           text COLLATE "C" PRIMARY KEY CHECK (char_length(event_id) BETWEEN 1 AND 200),
  type               text COLLATE "C" NOT NULL,
  title              text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 300),
  body               text NOT NULL CHECK (char_length(body) <= 2000),
  data               jsonb NOT NULL,
  collection         text COLLATE "C",
  sale_id            text COLLATE "C",
  buyer_ids          text[] COLLATE "C",
  told_through       text COLLATE "C" NOT NULL DEFAULT '',
  requested_through  text COLLATE "C" NOT NULL DEFAULT '',
  recipients         bigint NOT NULL DEFAULT 0,
  in_app             bigint NOT NULL DEFAULT 0,
  email              bigint NOT NULL DEFAULT 0,
  sms                bigint NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz,
  CHECK (num_nonnulls(collection, sale_id, buyer_ids) = 1)
);
CREATE INDEX notification_fanouts_unfinished ON notification_fanouts (created_at) WHERE finished_at IS NULL;

-- When an auction's creation was handed to Redis with its auction.created
-- event (loadAuction's outbox entry); null: not yet, so the next load
-- (auctions.loadOpen on start, or first use) writes the event. Auctions
-- created before this column are taken as told.
ALTER TABLE auctions ADD COLUMN announced_at timestamptz;
UPDATE auctions SET announced_at = created_at;

-- Down Migration
ALTER TABLE auctions DROP COLUMN announced_at;
DROP TABLE notification_fanouts, sale_watches;
