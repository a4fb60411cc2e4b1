-- Up Migration

-- The dead letters, kept where an operator can page through, read, replay
-- and purge them. Workers dead-letter into each queue's `.dlq` (RabbitMQ
-- keeps them durably whatever Postgres does); the scheduler's keeper moves
-- each one here and only then acks it, so a keeper that dies in between
-- archives it again, and `fingerprint` (the message's id, the time it was
-- dead-lettered and a hash of its body) keeps one row. A replay publishes
-- the body back to its queue, confirmed, and records when; a purge deletes
-- the rows still waiting.
CREATE TABLE dead_letters (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue            text COLLATE "C" NOT NULL,
  fingerprint      text COLLATE "C" NOT NULL UNIQUE,
  message_id       text,
  type             text,
  content_type     text,
  body             bytea NOT NULL,
  headers          jsonb NOT NULL DEFAULT '{}',
  last_error       text,
  dead_lettered_at timestamptz NOT NULL,
  archived_at      timestamptz NOT NULL DEFAULT now(),
  replayed_at      timestamptz
);
-- The waiting ones of a queue, newest first (the list), and their count.
CREATE INDEX dead_letters_waiting ON dead_letters (queue, id DESC) WHERE replayed_at IS NULL;

-- Down Migration
DROP TABLE dead_letters;
