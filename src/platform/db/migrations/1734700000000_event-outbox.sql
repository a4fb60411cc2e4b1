-- Up Migration

-- Events a Postgres change announces (sale.created, sale.updated,
-- sale.closed), written in the change's own transaction: the change and its
-- event commit together or not at all. A relay (src/platform/messaging/
-- pg-outbox.ts) publishes them with publisher confirms and deletes each row
-- only after the broker confirmed it, so a broker that is away delays them,
-- never loses one. `seq` keeps them in the order they were written.
CREATE TABLE event_outbox (
  seq         bigserial PRIMARY KEY,
  event_id    text COLLATE "C" NOT NULL,
  event       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE event_outbox;
