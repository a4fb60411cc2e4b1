/**
 * The live push of new inbox rows: published on NOTIFICATIONS_CHANNEL
 * (src/notifications/keys.ts) for every api node to forward to the buyer's
 * connections. Publishing is best-effort and never holds an announcement
 * back: the row is committed already, and a buyer who missed the push finds
 * it in the inbox, or gets it on resuming the SSE stream.
 */
import type { Redis } from '../platform/redis/client.js';
import type { Logger } from '../platform/log.js';
import { NOTIFICATIONS_CHANNEL } from './keys.js';
import { viewOf } from './inbox.js';
import type { NotificationRecord } from './repository.js';

/** One message of NOTIFICATIONS_CHANNEL: `<buyer id> <item json>`. */
export const pushMessageOf = (n: NotificationRecord): string => `${n.recipientId} ${JSON.stringify(viewOf(n))}`;

export class LivePush {
  /** Rows published (for operators and tests). */
  published = 0;

  constructor(private readonly redis: Redis, private readonly log: Logger) {}

  /** Publishes these committed rows in one round trip, in their order; a failure is logged, not thrown. */
  async publish(created: NotificationRecord[]): Promise<void> {
    if (created.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const n of created) pipeline.publish(NOTIFICATIONS_CHANNEL, pushMessageOf(n));
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed) throw failed[0];
      this.published += created.length;
    } catch (err) {
      this.log.warn({ err, rows: created.length }, 'notifications: live push failed; the rows are in the inbox');
    }
  }
}
