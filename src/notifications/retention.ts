/**
 * Retention by age: the scheduler deletes the notifications older than the
 * retention (STAMPEDE_NOTIFICATION_RETENTION_DAYS) every sweep
 * (STAMPEDE_NOTIFICATION_SWEEP_MS), in batches of SWEEP_BATCH so no delete
 * holds many locks or a long transaction. Until a sweep comes, an expired
 * row is already neither shown, counted nor markable (the inbox reads only
 * what the retention keeps: src/notifications/inbox.ts), so the sweep only
 * gives the space back. The cap is kept where inboxes grow (pruneInboxes).
 */
import type { Pool } from '../platform/db/pool.js';
import type { Logger } from '../platform/log.js';
import { keptSince, type Retention } from './inbox.js';
import { deleteExpiredNotifications } from './repository.js';
import { Every } from '../platform/time.js';

/** Rows one delete of a sweep takes; a sweep deletes again while deletes come back full. */
export const SWEEP_BATCH = 5_000;

export interface RetentionSweepOptions {
  pool: Pool;
  retention: Retention;
  log: Logger;
  everyMs: number;
  /** The wall clock ages are read by (tests shift it). */
  clock?: () => number;
}

export class RetentionSweep {
  private readonly schedule: Every;
  /** Notifications deleted since start (for operators and tests). */
  deleted = 0;

  constructor(private readonly options: RetentionSweepOptions) {
    this.schedule = new Every(options.everyMs, () => this.sweep(), (err) => options.log.error({ err }, 'notification retention sweep failed'));
  }

  start(): void {
    this.schedule.start();
  }

  stop(): Promise<void> {
    return this.schedule.stop();
  }

  /** Deletes every notification past the retention's age; returns how many. */
  async sweep(): Promise<number> {
    const { pool, retention, log, clock = Date.now } = this.options;
    const before = keptSince(retention, clock());
    let deleted = 0;
    for (;;) {
      const n = await deleteExpiredNotifications(pool, before, SWEEP_BATCH);
      deleted += n;
      if (n < SWEEP_BATCH) break;
    }
    this.deleted += deleted;
    if (deleted > 0) log.info({ deleted, before }, 'notifications past their retention deleted');
    return deleted;
  }
}
