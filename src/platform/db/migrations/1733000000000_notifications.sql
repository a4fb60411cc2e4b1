-- Up Migration

-- The inbox: what each buyer was told in the app (the in_app channel). One
-- row per (event, recipient): the worker inserts under this key, so a
-- redelivered announcement changes nothing. `seq` orders a buyer's inbox
-- (newest first) and is its keyset cursor.
CREATE TABLE notifications (
  seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id      text COLLATE "C" NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 200),
  recipient_id  text COLLATE "C" NOT NULL,
  type          text COLLATE "C" NOT NULL,
  title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 300),
  body          text NOT NULL CHECK (char_length(body) <= 2000),
  data          jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  read_at       timestamptz,
  UNIQUE (event_id, recipient_id)
);
CREATE INDEX notifications_inbox ON notifications (recipient_id, seq DESC);
-- Unread counts and marking all read touch only the unread rows.
CREATE INDEX notifications_unread ON notifications (recipient_id, seq) WHERE read_at IS NULL;

-- When each buyer last opened the inbox: `unread` counts what was created after.
CREATE TABLE notification_inboxes (
  buyer_id   text COLLATE "C" PRIMARY KEY,
  opened_at  timestamptz NOT NULL
);

-- What each buyer wants to be told, and where. `channels` and `types` hold
-- only what the buyer set (defaults fill the rest when read), so a new
-- notification type starts at its defaults for everyone.
CREATE TABLE notification_preferences (
  buyer_id     text COLLATE "C" PRIMARY KEY,
  channels     jsonb NOT NULL DEFAULT '{}',
  types        jsonb NOT NULL DEFAULT '{}',
  email        text CHECK (char_length(email) <= 320),
  phone        text COLLATE "C" CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
  time_zone    text COLLATE "C" CHECK (char_length(time_zone) <= 64),
  -- Quiet hours as minutes after local midnight; both or neither.
  quiet_start  smallint CHECK (quiet_start BETWEEN 0 AND 1439),
  quiet_end    smallint CHECK (quiet_end BETWEEN 0 AND 1439),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
  CHECK (quiet_start IS NULL OR time_zone IS NOT NULL)
);

-- Down Migration
DROP TABLE notification_preferences, notification_inboxes, notifications;
