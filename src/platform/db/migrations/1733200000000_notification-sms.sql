-- Up Migration

-- The SMS channel, as the e-mail one (1733100000000_notification-emails.sql):
-- one row per (event, recipient), written by the notifications worker in the
-- transaction that writes the inbox, sent by the SMS worker holding it
-- locked and recorded `sent_at` in the same transaction. The phone is the
-- one the buyer had when the notification was told.
CREATE TABLE notification_sms (
  event_id      text COLLATE "C" NOT NULL,
  recipient_id  text COLLATE "C" NOT NULL,
  type          text COLLATE "C" NOT NULL,
  phone         text COLLATE "C" NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
  body          text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1600),
  created_at    timestamptz NOT NULL DEFAULT now(),
  sent_at       timestamptz,
  PRIMARY KEY (event_id, recipient_id)
);

-- Down Migration
DROP TABLE notification_sms;
