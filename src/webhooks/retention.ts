/**
 * Webhook messages are kept STAMPEDE_WEBHOOK_RETENTION_DAYS after they were
 * made, for sellers to list with their attempts, replay, and recover after an
 * outage (a disabled endpoint's messages are made and kept failed for that).
 * Then the scheduler deletes the done ones (delivered, or failed for good)
 * with their attempts, in batches, as often as it sweeps the notifications
 * (src/platform/db/age-sweep.ts). A message still pending is never deleted,
 * however old: the dispatcher still owes it an attempt.
 */
import type { Pool } from '../platform/db/pool.js';
import type { Logger } from '../platform/log.js';
import { AgeSweep } from '../platform/db/age-sweep.js';
import { deleteDoneDeliveries } from './repository.js';

const DAY_MS = 86_400_000;

export function webhookRetentionSweep(pool: Pool, retentionDays: number, everyMs: number, log: Logger, clock?: () => number): AgeSweep {
  return new AgeSweep({
    what: 'webhook messages', everyMs, log, clock,
    keptSince: (now) => new Date(now - retentionDays * DAY_MS),
    deleteBatch: (before, limit) => deleteDoneDeliveries(pool, before, limit),
  });
}
