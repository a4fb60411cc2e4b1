-- Up Migration

-- Reconciliation reports (src/ops/reconciliation.ts): each run of
-- `stampede reconcile`, the scheduler's or POST /v1/ops/reconciliation
-- stores what it checked, found and repaired, so any api node serves the
-- latest (GET /v1/ops/reconciliation) and its metrics. Runs beyond the
-- newest few hundred are deleted as new ones are stored.
CREATE TABLE reconciliation_runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  trigger      text COLLATE "C" NOT NULL CHECK (trigger IN ('cli', 'schedule', 'api')),
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL,
  findings     integer NOT NULL CHECK (findings >= 0),
  repaired     integer NOT NULL CHECK (repaired >= 0 AND repaired <= findings),
  report       jsonb NOT NULL
);

-- Down Migration
DROP TABLE reconciliation_runs;
