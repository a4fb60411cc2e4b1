-- Up Migration

-- The collections each buyer follows: an auction created in one is told to
-- its followers (auction.created), and an operator's announcement can name a
-- collection as its audience. Read by collection for a fan-out, by buyer for
-- GET /v1/interests. Names are compared exactly, as auctions store them.
CREATE TABLE buyer_interests (
  buyer_id    text COLLATE "C" NOT NULL,
  collection  text COLLATE "C" NOT NULL CHECK (char_length(collection) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (buyer_id, collection)
);
CREATE INDEX buyer_interests_followers ON buyer_interests (collection, buyer_id);

-- Down Migration
DROP TABLE buyer_interests;
