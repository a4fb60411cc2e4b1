-- Up Migration

-- Scheduled notifications: an operator's announcement (`ann_…`) or a sale's
-- opening notice (`sop_` and the sale id's body, so a sale has one). The row
-- is the record; Redis holds only the due index ({notifications}:due), which
-- the scheduler rebuilds from the rows still `scheduled` when it starts.
-- `status` moves scheduled -> sending -> sent, or scheduled -> cancelled,
-- each by a conditional UPDATE: a cancel and the worker's claim never both
-- win. The id is the event id of every inbox row, e-mail and SMS it sends.
CREATE TABLE notification_sends (
  id            text COLLATE "C" PRIMARY KEY CHECK (id ~ '^(ann|sop)_[0-9a-z]{12}$'),
  type          text COLLATE "C" NOT NULL CHECK (type IN ('announcement', 'sale.opening')),
  -- {"buyerIds": [...]} | {"collection": "..."} | {"saleId": "..."}
  audience      jsonb NOT NULL,
  -- An announcement's words; a sale's opening notice is worded from the sale when it is sent.
  title         text CHECK (char_length(title) BETWEEN 1 AND 300),
  body          text CHECK (char_length(body) <= 2000),
  -- The channels the operator named; NULL: the type's defaults.
  channels      text[] COLLATE "C" CHECK (channels <@ ARRAY['in_app', 'email', 'sms']::text[] COLLATE "C"),
  send_at       timestamptz NOT NULL,
  status        text COLLATE "C" NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'sending', 'sent', 'cancelled')),
  -- Buyers the audience held when it was fanned out (set when sent).
  recipients    integer CHECK (recipients >= 0),
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  sent_at       timestamptz,
  cancelled_at  timestamptz,
  CHECK ((type = 'announcement') = (title IS NOT NULL AND body IS NOT NULL))
);
-- The scheduler's start-up reload reads only these.
CREATE INDEX notification_sends_scheduled ON notification_sends (send_at) WHERE status = 'scheduled';

-- A fan-out told on channels its sender named (an operator's announcement)
-- instead of its type's defaults; NULL: the defaults. Buyers' own switches
-- still win over either.
ALTER TABLE notification_fanouts ADD COLUMN channels text[] COLLATE "C" CHECK (channels <@ ARRAY['in_app', 'email', 'sms']::text[] COLLATE "C");

-- Down Migration
ALTER TABLE notification_fanouts DROP COLUMN channels;
DROP TABLE notification_sends;
