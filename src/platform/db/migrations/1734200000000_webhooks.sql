-- Up Migration

-- Sellers' webhooks (src/webhooks). An endpoint is a seller's (owner_id),
-- or an operator's (owner_id NULL: every seller's events). Its secret is
-- kept in clear: every delivery is signed with it (HMAC), so it cannot be
-- hashed; after a rotation the previous one signs too until it expires.
CREATE TABLE webhook_endpoints (
  id                          text COLLATE "C" PRIMARY KEY,
  owner_id                    text COLLATE "C" REFERENCES users (id),
  url                         text NOT NULL CHECK (length(url) <= 2048),
  description                 text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
  events                      text[] NOT NULL CHECK (cardinality(events) >= 1),
  enabled                     boolean NOT NULL DEFAULT true,
  disabled_reason             text COLLATE "C" CHECK (disabled_reason IN ('gone', 'failing', 'owner')),
  disabled_at                 timestamptz,
  secret                      text NOT NULL,
  previous_secret             text,
  previous_secret_expires_at  timestamptz,
  -- The first failure since the last success (NULL: the last attempt succeeded, or none failed yet).
  failing_since               timestamptz,
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner_id, id);

-- One message per (event, endpoint): the fan-out inserts ON CONFLICT DO
-- NOTHING, so a redelivered event makes no second message; its id is the
-- webhook-id of every attempt. The body is fixed when it is made, so each
-- retry sends the same bytes.
CREATE TABLE webhook_deliveries (
  id               text COLLATE "C" PRIMARY KEY,
  endpoint_id      text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  event_id         text COLLATE "C" NOT NULL,
  event_type       text COLLATE "C" NOT NULL,
  body             text NOT NULL,
  status           text COLLATE "C" NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- Failed attempts since it was made or last replayed: its place in the retry schedule.
  failures         integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  next_attempt_at  timestamptz,
  -- A worker sending it holds it until then; one that died lets it go when it passes (the next attempt is a retry, same id).
  lease_until      timestamptz,
  accepted_at      timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_page ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
  delivery_id  text COLLATE "C" NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  n            integer NOT NULL CHECK (n >= 1),
  at           timestamptz NOT NULL,
  status_code  integer,
  latency_ms   integer NOT NULL CHECK (latency_ms >= 0),
  -- The first 1 KB of the answer.
  response     text NOT NULL DEFAULT '',
  error        text,
  PRIMARY KEY (delivery_id, n)
);

-- Down Migration
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
