/**
 * Retention by age, for any table that keeps rows for a while: every
 * `everyMs` it deletes what is older than `keptSince(now)`, in batches of
 * `batch` rows, so no delete holds many locks or a long transaction; a sweep
 * deletes again while deletes come back full. The notifications
 * (src/notifications/retention.ts) and the webhook messages
 * (src/webhooks/retention.ts) are swept this way by the scheduler.
 */
import type { Logger } from '../log.js';
import { Every } from '../time.js';

export interface AgeSweepOptions {
  /** What is swept, for the logs: "notifications", "webhook messages". */
  what: string;
  everyMs: number;
  log: Logger;
  /** Rows created before this are past their retention. */
  keptSince: (now: number) => Date;
  /** Deletes at most `limit` rows created before `before`; returns how many. */
  deleteBatch: (before: Date, limit: number) => Promise<number>;
  batch?: number;
  /** The wall clock ages are read by (tests shift it). */
  clock?: () => number;
}

export const SWEEP_BATCH = 5_000;

export class AgeSweep {
  private readonly schedule: Every;
  /** Rows deleted since start (for operators and tests). */
  deleted = 0;

  constructor(private readonly options: AgeSweepOptions) {
    this.schedule = new Every(options.everyMs, () => this.sweep(), (err) => options.log.error({ err }, `${options.what}: retention sweep failed`));
  }

  start(): void {
    this.schedule.start();
  }

  stop(): Promise<void> {
    return this.schedule.stop();
  }

  /** Deletes every row past the retention's age; returns how many. */
  async sweep(): Promise<number> {
    const { keptSince, deleteBatch, log, what, batch = SWEEP_BATCH, clock = Date.now } = this.options;
    const before = keptSince(clock());
    let deleted = 0;
    for (;;) {
      const n = await deleteBatch(before, batch);
      deleted += n;
      if (n < batch) break;
    }
    this.deleted += deleted;
    if (deleted > 0) log.info({ deleted, before }, `${what} past their retention deleted`);
    return deleted;
  }
}
