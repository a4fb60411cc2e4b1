-- Up Migration

-- Identifiers compare byte by byte. Every text key (ids, references, ledger
-- refs, currencies) used the database's collation, C.UTF-8 or en_US.UTF-8,
-- so each B-tree comparison went through strcoll. Profiled during the
-- settlement drain, _bt_compare and the collation calls were the largest
-- share of Postgres CPU (about 20 %). Identifiers are ASCII, so "C" orders
-- them as before under C.UTF-8; names, titles and e-mails keep the
-- database's collation. The foreign keys are dropped and re-added around
-- the change so both sides of each change together.
--
-- Operating note: each changed column rebuilds its table's indexes under an
-- ACCESS EXCLUSIVE lock, all in this one transaction. On a large orders or
-- ledger table that takes a while; roles starting meanwhile wait for the
-- migration lock (migrate(): 60 s) and, past that, exit and are restarted
-- by their supervisor until it is done. Run `stampede migrate` on its own
-- first on a big database.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_user_id_fkey;
ALTER TABLE wallets DROP CONSTRAINT wallets_user_id_fkey;
ALTER TABLE sales DROP CONSTRAINT sales_seller_id_fkey;
ALTER TABLE auctions DROP CONSTRAINT auctions_seller_id_fkey;
ALTER TABLE auctions DROP CONSTRAINT auctions_winner_id_fkey;
ALTER TABLE auction_events DROP CONSTRAINT auction_events_auction_id_fkey;
ALTER TABLE auction_offers DROP CONSTRAINT auction_offers_auction_id_fkey;
ALTER TABLE users
  ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE api_keys
  ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE wallets
  ALTER COLUMN user_id TYPE text COLLATE "C",
  ALTER COLUMN currency TYPE character(3) COLLATE "C";
ALTER TABLE sales
  ALTER COLUMN id TYPE text COLLATE "C",
  ALTER COLUMN seller_id TYPE text COLLATE "C",
  ALTER COLUMN currency TYPE character(3) COLLATE "C";
ALTER TABLE orders
  ALTER COLUMN purchase_id TYPE text COLLATE "C",
  ALTER COLUMN sale_id TYPE text COLLATE "C",
  ALTER COLUMN buyer_id TYPE text COLLATE "C",
  ALTER COLUMN currency TYPE character(3) COLLATE "C";
ALTER TABLE ledger_entries
  ALTER COLUMN ref TYPE text COLLATE "C",
  ALTER COLUMN user_id TYPE text COLLATE "C",
  ALTER COLUMN currency TYPE character(3) COLLATE "C";
ALTER TABLE purchase_events
  ALTER COLUMN event_id TYPE text COLLATE "C",
  ALTER COLUMN purchase_id TYPE text COLLATE "C",
  ALTER COLUMN sale_id TYPE text COLLATE "C";
ALTER TABLE auctions
  ALTER COLUMN id TYPE text COLLATE "C",
  ALTER COLUMN seller_id TYPE text COLLATE "C",
  ALTER COLUMN winner_id TYPE text COLLATE "C",
  ALTER COLUMN currency TYPE character(3) COLLATE "C";
ALTER TABLE auction_events
  ALTER COLUMN event_id TYPE text COLLATE "C",
  ALTER COLUMN auction_id TYPE text COLLATE "C",
  ALTER COLUMN bid_id TYPE text COLLATE "C",
  ALTER COLUMN buyer_id TYPE text COLLATE "C";
ALTER TABLE auction_offers
  ALTER COLUMN auction_id TYPE text COLLATE "C",
  ALTER COLUMN bid_id TYPE text COLLATE "C",
  ALTER COLUMN buyer_id TYPE text COLLATE "C";
ALTER TABLE idempotency_keys
  ALTER COLUMN scope TYPE text COLLATE "C",
  ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE api_keys ADD CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE wallets ADD CONSTRAINT wallets_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE sales ADD CONSTRAINT sales_seller_id_fkey FOREIGN KEY (seller_id) REFERENCES users (id);
ALTER TABLE auctions ADD CONSTRAINT auctions_seller_id_fkey FOREIGN KEY (seller_id) REFERENCES users (id);
ALTER TABLE auctions ADD CONSTRAINT auctions_winner_id_fkey FOREIGN KEY (winner_id) REFERENCES users (id);
ALTER TABLE auction_events ADD CONSTRAINT auction_events_auction_id_fkey FOREIGN KEY (auction_id) REFERENCES auctions (id);
ALTER TABLE auction_offers ADD CONSTRAINT auction_offers_auction_id_fkey FOREIGN KEY (auction_id) REFERENCES auctions (id);

-- Changing a column's type drops its statistics; without them the planner
-- took the settlement's wallet lookup for a scan of the whole table.
ANALYZE users, api_keys, wallets, sales, orders, ledger_entries, purchase_events, auctions, auction_events, auction_offers, idempotency_keys;

-- Down Migration
ALTER TABLE api_keys DROP CONSTRAINT api_keys_user_id_fkey;
ALTER TABLE wallets DROP CONSTRAINT wallets_user_id_fkey;
ALTER TABLE sales DROP CONSTRAINT sales_seller_id_fkey;
ALTER TABLE auctions DROP CONSTRAINT auctions_seller_id_fkey;
ALTER TABLE auctions DROP CONSTRAINT auctions_winner_id_fkey;
ALTER TABLE auction_events DROP CONSTRAINT auction_events_auction_id_fkey;
ALTER TABLE auction_offers DROP CONSTRAINT auction_offers_auction_id_fkey;
ALTER TABLE users
  ALTER COLUMN id TYPE text COLLATE "default";
ALTER TABLE api_keys
  ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE wallets
  ALTER COLUMN user_id TYPE text COLLATE "default",
  ALTER COLUMN currency TYPE character(3) COLLATE "default";
ALTER TABLE sales
  ALTER COLUMN id TYPE text COLLATE "default",
  ALTER COLUMN seller_id TYPE text COLLATE "default",
  ALTER COLUMN currency TYPE character(3) COLLATE "default";
ALTER TABLE orders
  ALTER COLUMN purchase_id TYPE text COLLATE "default",
  ALTER COLUMN sale_id TYPE text COLLATE "default",
  ALTER COLUMN buyer_id TYPE text COLLATE "default",
  ALTER COLUMN currency TYPE character(3) COLLATE "default";
ALTER TABLE ledger_entries
  ALTER COLUMN ref TYPE text COLLATE "default",
  ALTER COLUMN user_id TYPE text COLLATE "default",
  ALTER COLUMN currency TYPE character(3) COLLATE "default";
ALTER TABLE purchase_events
  ALTER COLUMN event_id TYPE text COLLATE "default",
  ALTER COLUMN purchase_id TYPE text COLLATE "default",
  ALTER COLUMN sale_id TYPE text COLLATE "default";
ALTER TABLE auctions
  ALTER COLUMN id TYPE text COLLATE "default",
  ALTER COLUMN seller_id TYPE text COLLATE "default",
  ALTER COLUMN winner_id TYPE text COLLATE "default",
  ALTER COLUMN currency TYPE character(3) COLLATE "default";
ALTER TABLE auction_events
  ALTER COLUMN event_id TYPE text COLLATE "default",
  ALTER COLUMN auction_id TYPE text COLLATE "default",
  ALTER COLUMN bid_id TYPE text COLLATE "default",
  ALTER COLUMN buyer_id TYPE text COLLATE "default";
ALTER TABLE auction_offers
  ALTER COLUMN auction_id TYPE text COLLATE "default",
  ALTER COLUMN bid_id TYPE text COLLATE "default",
  ALTER COLUMN buyer_id TYPE text COLLATE "default";
ALTER TABLE idempotency_keys
  ALTER COLUMN scope TYPE text COLLATE "default",
  ALTER COLUMN key TYPE text COLLATE "default";
ALTER TABLE api_keys ADD CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE wallets ADD CONSTRAINT wallets_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE sales ADD CONSTRAINT sales_seller_id_fkey FOREIGN KEY (seller_id) REFERENCES users (id);
ALTER TABLE auctions ADD CONSTRAINT auctions_seller_id_fkey FOREIGN KEY (seller_id) REFERENCES users (id);
ALTER TABLE auctions ADD CONSTRAINT auctions_winner_id_fkey FOREIGN KEY (winner_id) REFERENCES users (id);
ALTER TABLE auction_events ADD CONSTRAINT auction_events_auction_id_fkey FOREIGN KEY (auction_id) REFERENCES auctions (id);
ALTER TABLE auction_offers ADD CONSTRAINT auction_offers_auction_id_fkey FOREIGN KEY (auction_id) REFERENCES auctions (id);
ANALYZE users, api_keys, wallets, sales, orders, ledger_entries, purchase_events, auctions, auction_events, auction_offers, idempotency_keys;
