-- Up Migration

-- Settlement wrote every order and every ledger debit through a foreign key
-- to users. Each row fired a trigger that ran a query and took a FOR KEY
-- SHARE row lock on the buyer's users row, and a row lock is a write: it
-- dirties the users page and logs WAL. Profiled on 1,000-order batches,
-- the two keys cost about 30 ms per 1,000 orders each, and almost halved
-- Postgres CPU per settled order (about 150 -> 85 us) when dropped.
--
-- What they guarded still holds, checked once per batch instead of once per row:
-- * A ledger debit or refund is only written for a wallet the settling
--   transaction holds locked FOR UPDATE, and wallets.user_id references users.
-- * A buyer without a wallet in the order's currency gets a failed order;
--   settlement first checks, in one query for the batch, that each such buyer
--   exists (src/db/settlement.ts). Users are never deleted, only marked
--   deleted_at, so the check cannot go stale before the commit.
-- * Operator credits (creditWallet) upsert the buyer's wallet in the same
--   transaction as the ledger entry, and check the buyer first.
ALTER TABLE orders DROP CONSTRAINT orders_buyer_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_user_id_fkey;

-- Down Migration
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE orders ADD CONSTRAINT orders_buyer_id_fkey FOREIGN KEY (buyer_id) REFERENCES users (id);
