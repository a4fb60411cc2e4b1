-- Up Migration

-- Terms of an auction (the record); its live state is in Redis and its
-- history in auction_events, from which Redis can be rebuilt.
CREATE TABLE auctions (
  id               text PRIMARY KEY CHECK (id ~ '^auc_[0-9a-z]{12}$'),
  seller_id        text REFERENCES users (id),
  title            text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  collection       text CHECK (char_length(collection) <= 200),
  currency         char(3) NOT NULL,
  start_price      bigint NOT NULL CHECK (start_price > 0),
  reserve_price    bigint NOT NULL DEFAULT 0 CHECK (reserve_price >= 0),
  buy_now_price    bigint CHECK (buy_now_price > 0),
  increment_rule   jsonb NOT NULL,
  soft_close_ms    integer NOT NULL CHECK (soft_close_ms >= 0),
  starts_at        timestamptz NOT NULL,
  ends_at          timestamptz NOT NULL,
  hard_close_at    timestamptz NOT NULL,
  promoter         jsonb,
  -- Salt of the anonymous bidder handles; never shown.
  handle_salt      text NOT NULL,
  status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'cancelled')),
  closed_at        timestamptz,
  -- Settlement outcome: NULL until the close is settled.
  outcome          text CHECK (outcome IN ('sold', 'unsold')),
  winner_id        text REFERENCES users (id),
  final_price      bigint CHECK (final_price >= 0),
  house_bonus      bigint CHECK (house_bonus >= 0),
  settled_at       timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at),
  CHECK (hard_close_at >= ends_at),
  CHECK (buy_now_price IS NULL OR (buy_now_price >= start_price AND buy_now_price >= reserve_price))
);
CREATE INDEX auctions_open ON auctions (ends_at) WHERE status = 'open';

-- The append-only log: every bid placed, retracted, doubled, every extension,
-- every close and cancellation, in the order the auction's script decided.
CREATE TABLE auction_events (
  event_id     text PRIMARY KEY,
  auction_id   text NOT NULL REFERENCES auctions (id),
  seq          integer NOT NULL CHECK (seq > 0),
  type         text NOT NULL CHECK (type IN ('bid_placed', 'bid_retracted', 'bid_doubled', 'extended', 'closed', 'cancelled')),
  bid_id       text,
  buyer_id     text,
  payload      jsonb NOT NULL,
  occurred_at  timestamptz NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (auction_id, seq)
);
CREATE INDEX auction_events_buyer ON auction_events (buyer_id) WHERE buyer_id IS NOT NULL;

-- Settlement attempts of a closed auction, one per bidder offered the lot.
CREATE TABLE auction_offers (
  auction_id  text NOT NULL REFERENCES auctions (id),
  rank        integer NOT NULL CHECK (rank > 0),
  buyer_id    text NOT NULL,
  bid_id      text NOT NULL,
  price       bigint NOT NULL CHECK (price >= 0),
  bonus       bigint NOT NULL CHECK (bonus >= 0),
  result      text NOT NULL CHECK (result IN ('paid', 'cannot_pay')),
  decided_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (auction_id, rank)
);

ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
  CHECK (kind IN ('credit', 'purchase', 'refund', 'auction', 'promotion'));

-- Down Migration
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ('credit', 'purchase', 'refund'));
DROP TABLE auction_offers, auction_events, auctions;
