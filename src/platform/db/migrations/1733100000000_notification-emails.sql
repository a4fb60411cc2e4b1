-- Up Migration

-- The e-mail channel: one row per (event, recipient), written by the
-- notifications worker in the transaction that writes the inbox, so a
-- redelivered announcement asks for no second e-mail. The e-mail worker
-- sends a row holding it locked and records `sent_at` in the same
-- transaction; every attempt carries `message_id`, so a resend after a crash
-- between the SMTP send and that commit is the same message to the receiver.
CREATE TABLE notification_emails (
  event_id      text COLLATE "C" NOT NULL,
  recipient_id  text COLLATE "C" NOT NULL,
  type          text COLLATE "C" NOT NULL,
  address       text NOT NULL CHECK (char_length(address) <= 320),
  subject       text NOT NULL,
  body          text NOT NULL,
  message_id    text COLLATE "C" NOT NULL UNIQUE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  sent_at       timestamptz,
  PRIMARY KEY (event_id, recipient_id)
);

-- Down Migration
DROP TABLE notification_emails;
