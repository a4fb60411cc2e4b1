-- Up Migration

-- A large fan-out's audience is split into parts told side by side (the
-- notifications worker steps each part in turn, the parts at once), so a
-- million recipients use more than one core. A part holds what the fan-out
-- held per cursor: its buyers are those after the previous part's `last_id`
-- ('' for the first) up to its own (null: to the audience's end), in buyer id
-- order; `told_through` is the last buyer id whose rows are committed and
-- `requested_through` the last whose e-mail and SMS requests the broker
-- confirmed; the counts are what its committed chunks recorded. The fan-out
-- is finished (notification_fanouts.finished_at) when its last part is.
CREATE TABLE notification_fanout_parts (
  event_id           text COLLATE "C" NOT NULL REFERENCES notification_fanouts ON DELETE CASCADE,
  part               smallint NOT NULL CHECK (part >= 0),
  last_id            text COLLATE "C",
  told_through       text COLLATE "C" NOT NULL,
  requested_through  text COLLATE "C" NOT NULL,
  recipients         bigint NOT NULL DEFAULT 0,
  in_app             bigint NOT NULL DEFAULT 0,
  email              bigint NOT NULL DEFAULT 0,
  sms                bigint NOT NULL DEFAULT 0,
  finished_at        timestamptz,
  PRIMARY KEY (event_id, part)
);
INSERT INTO notification_fanout_parts (event_id, part, last_id, told_through, requested_through, recipients, in_app, email, sms, finished_at)
  SELECT event_id, 0, NULL, told_through, requested_through, recipients, in_app, email, sms, finished_at FROM notification_fanouts;
ALTER TABLE notification_fanouts DROP COLUMN told_through, DROP COLUMN requested_through,
  DROP COLUMN recipients, DROP COLUMN in_app, DROP COLUMN email, DROP COLUMN sms;

-- Down Migration
ALTER TABLE notification_fanouts ADD COLUMN told_through text COLLATE "C" NOT NULL DEFAULT '',
  ADD COLUMN requested_through text COLLATE "C" NOT NULL DEFAULT '', ADD COLUMN recipients bigint NOT NULL DEFAULT 0,
  ADD COLUMN in_app bigint NOT NULL DEFAULT 0, ADD COLUMN email bigint NOT NULL DEFAULT 0, ADD COLUMN sms bigint NOT NULL DEFAULT 0;
-- An unfinished fan-out resumes after its first unfinished part's cursor
-- (the later parts' buyers told already are skipped, never told twice).
UPDATE notification_fanouts f SET told_through = p.told_through, requested_through = p.requested_through,
  recipients = p.recipients, in_app = p.in_app, email = p.email, sms = p.sms
  FROM (SELECT event_id,
               coalesce(min(told_through) FILTER (WHERE finished_at IS NULL), max(told_through)) AS told_through,
               coalesce(min(requested_through) FILTER (WHERE finished_at IS NULL), max(requested_through)) AS requested_through,
               sum(recipients) AS recipients, sum(in_app) AS in_app, sum(email) AS email, sum(sms) AS sms
          FROM notification_fanout_parts GROUP BY event_id) p
  WHERE f.event_id = p.event_id;
DROP TABLE notification_fanout_parts;
