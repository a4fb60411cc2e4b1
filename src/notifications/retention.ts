/**
 * Retention by age: the scheduler deletes the notifications older than the
 * retention (STAMPEDE_NOTIFICATION_RETENTION_DAYS) every sweep
 * (STAMPEDE_NOTIFICATION_SWEEP_MS), in batches (src/platform/db/age-sweep.ts).
 * Until a sweep comes, an expired row is already neither shown, counted nor
 * markable (the inbox reads only what the retention keeps:
 * src/notifications/inbox.ts), so the sweep only gives the space back. The
 * cap is kept where inboxes grow (pruneInboxes).
 */
import type { Pool } from '../platform/db/pool.js';
import type { Logger } from '../platform/log.js';
import { AgeSweep } from '../platform/db/age-sweep.js';
import { keptSince, type Retention } from './inbox.js';
import { deleteExpiredNotifications } from './repository.js';

export { SWEEP_BATCH } from '../platform/db/age-sweep.js';

export interface RetentionSweepOptions {
  pool: Pool;
  retention: Retention;
  log: Logger;
  everyMs: number;
  /** The wall clock ages are read by (tests shift it). */
  clock?: () => number;
}

export class RetentionSweep extends AgeSweep {
  constructor({ pool, retention, log, everyMs, clock }: RetentionSweepOptions) {
    super({
      what: 'notifications', everyMs, log, clock,
      keptSince: (now) => keptSince(retention, now),
      deleteBatch: (before, limit) => deleteExpiredNotifications(pool, before, limit),
    });
  }
}
