-- Up Migration

CREATE TABLE users (
  id          text PRIMARY KEY CHECK (id ~ '^usr_[0-9a-z]{12}$'),
  kind        text NOT NULL CHECK (kind IN ('buyer', 'seller')),
  name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  email       text CHECK (char_length(email) <= 320),
  created_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

-- API keys are stored as SHA-256 of the key; the key itself is shown once.
CREATE TABLE api_keys (
  key_hash    bytea PRIMARY KEY,
  role        text NOT NULL CHECK (role IN ('operator', 'seller')),
  user_id     text REFERENCES users (id),
  label       text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz,
  CHECK (role = 'operator' OR user_id IS NOT NULL)
);

CREATE TABLE wallets (
  user_id     text NOT NULL REFERENCES users (id),
  currency    char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  balance     bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, currency)
);

-- Every movement of money, keyed by what caused it: a redelivered message
-- cannot write a second entry.
CREATE TABLE ledger_entries (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ref         text NOT NULL UNIQUE,
  user_id     text NOT NULL REFERENCES users (id),
  currency    char(3) NOT NULL,
  amount      bigint NOT NULL CHECK (amount <> 0),
  kind        text NOT NULL CHECK (kind IN ('credit', 'purchase', 'refund')),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_user ON ledger_entries (user_id, created_at);

CREATE TABLE sales (
  id               text PRIMARY KEY CHECK (id ~ '^sal_[0-9a-z]{12}$'),
  seller_id        text REFERENCES users (id),
  name             text NOT NULL,
  sku              text NOT NULL,
  unit_price       bigint NOT NULL CHECK (unit_price >= 0),
  currency         char(3) NOT NULL,
  stock            integer NOT NULL CHECK (stock >= 0),
  per_buyer_limit  integer NOT NULL CHECK (per_buyer_limit > 0),
  starts_at        timestamptz NOT NULL,
  ends_at          timestamptz NOT NULL,
  status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  closed_at        timestamptz,
  CHECK (ends_at > starts_at)
);
CREATE INDEX sales_active ON sales (ends_at) WHERE status = 'open';

-- One row per accepted purchase, keyed by its purchase id.
CREATE TABLE orders (
  purchase_id     text PRIMARY KEY,
  sale_id         text NOT NULL REFERENCES sales (id),
  buyer_id        text NOT NULL REFERENCES users (id),
  quantity        integer NOT NULL CHECK (quantity > 0),
  unit_price      bigint NOT NULL,
  amount          bigint NOT NULL,
  currency        char(3) NOT NULL,
  status          text NOT NULL CHECK (status IN ('confirmed', 'failed', 'cancelled')),
  failure_reason  text,
  accepted_at     timestamptz NOT NULL,
  settled_at      timestamptz NOT NULL DEFAULT now(),
  cancelled_at    timestamptz
);
CREATE INDEX orders_sale ON orders (sale_id, status);
CREATE INDEX orders_buyer ON orders (buyer_id);

-- The append-only log of purchase events as they were settled.
CREATE TABLE purchase_events (
  event_id     text PRIMARY KEY,
  purchase_id  text NOT NULL,
  sale_id      text NOT NULL,
  type         text NOT NULL,
  payload      jsonb NOT NULL,
  occurred_at  timestamptz NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchase_events_purchase ON purchase_events (purchase_id);

-- Idempotency of operator and seller POSTs (purchases keep theirs in Redis).
CREATE TABLE idempotency_keys (
  scope          text NOT NULL,
  key            text NOT NULL,
  request_hash   text NOT NULL,
  status         integer,
  response       jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

-- Down Migration
DROP TABLE idempotency_keys, purchase_events, orders, sales, ledger_entries, wallets, api_keys, users;
