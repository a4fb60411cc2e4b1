/** The operators' view of queues and outboxes: the Redis outbox streams and the Postgres outbox (event_outbox). */
import type { Redis } from 'ioredis';
import type { Pool } from '../platform/db/pool.js';
import { PG_OUTBOX_NAME, pgOutboxBacklog } from '../platform/messaging/pg-outbox.js';
import type { AmqpLink } from '../platform/messaging/link.js';
import { allQueues, type Topology } from '../platform/messaging/topology.js';
import { OUTBOX_REGISTRY, RELAY_GROUP } from '../platform/messaging/outbox.js';
import { batch } from '../platform/redis/client.js';

export interface QueueStat {
  queue: string;
  concern: string;
  kind: 'main' | 'retry' | 'dead-letter';
  messages: number;
  consumers: number;
}

export interface OutboxStat {
  stream: string;
  length: number;
  /** Entries appended but not yet read by any relay. */
  unread: number;
  /** Entries read by a relay and not yet confirmed by the broker. */
  pending: number;
  /** Age of the oldest entry not yet relayed (pending or unread), in ms; 0 when none waits. */
  oldestAgeMs: number;
}

export interface OpsView {
  queues(): Promise<{ queues: QueueStat[]; deadLetters: number; outboxes: OutboxStat[]; outboxBacklog: number }>;
}

export function createOpsView(redis: Redis, pool: Pool, link: AmqpLink, topology: Topology): OpsView {
  return {
    async queues() {
      const ch = link.channel();
      const queues: QueueStat[] = [];
      for (const q of allQueues(topology)) {
        const s = await ch.checkQueue(q.queue);
        queues.push({ ...q, messages: s.messageCount, consumers: s.consumerCount });
      }
      const streams = (await redis.smembers(OUTBOX_REGISTRY)).sort();
      // Each stream is in its own slot (client.ts `batch`).
      const [lengths, groupsOf, pendingOf] = await Promise.all([
        batch(redis, streams, (p, s) => p.xlen(s)),
        batch(redis, streams, (p, s) => p.xinfo('GROUPS', s)),
        batch(redis, streams, (p, s) => p.xpending(s, RELAY_GROUP)),
      ]);
      const read = streams.map((stream, i) => {
        const length = Number(lengths[i]?.[1] ?? 0);
        const groups = (groupsOf[i]?.[1] ?? []) as (string | number)[][];
        // XPENDING's summary: [count, smallest id, greatest id, consumers] (an error when the group is missing).
        const summary = pendingOf[i]?.[0] ? undefined : (pendingOf[i]?.[1] as [number, string | null] | undefined);
        let pending = 0;
        let unread = length;
        let lastDelivered: string | undefined;
        for (const g of groups) {
          const f: Record<string, string | number> = {};
          for (let k = 0; k + 1 < g.length; k += 2) f[String(g[k])] = g[k + 1]!;
          if (f.name !== RELAY_GROUP) continue;
          pending = Number(f.pending ?? 0);
          lastDelivered = String(f['last-delivered-id'] ?? '0-0');
          // `lag` is null when Redis cannot tell; then every entry but the pending ones may be unread.
          unread = f.lag === null || f.lag === undefined ? Math.max(0, length - pending) : Number(f.lag);
        }
        return { stream, length, unread, pending, oldestPending: pending > 0 ? summary?.[1] ?? undefined : undefined, lastDelivered };
      });
      // The oldest unread entry is the first after the group's last delivered one (or the stream's first, with no group yet).
      const unreadReplies = read.some((o) => o.unread > 0) ? await batch(redis, read, (p, o) => p.xrange(o.stream, o.lastDelivered ? `(${o.lastDelivered}` : '-', '+', 'COUNT', 1)) : [];
      const now = Date.now();
      const ageOf = (id: string | undefined) => (id ? Math.max(0, now - Number(id.split('-')[0])) : 0);
      const outboxes: OutboxStat[] = read.map((o, i) => {
        const entries = (unreadReplies[i]?.[1] ?? []) as [string, string[]][];
        const oldestUnread = o.unread > 0 ? entries[0]?.[0] : undefined;
        return { stream: o.stream, length: o.length, unread: o.unread, pending: o.pending, oldestAgeMs: Math.max(ageOf(o.oldestPending), ageOf(oldestUnread)) };
      });
      // The Postgres outbox holds only rows not yet confirmed by the broker: each is unread until a relay takes it.
      const pg = await pgOutboxBacklog(pool);
      outboxes.push({ stream: PG_OUTBOX_NAME, length: pg.waiting, unread: pg.waiting, pending: 0, oldestAgeMs: pg.oldestAgeMs });
      return {
        queues,
        deadLetters: queues.filter((q) => q.kind === 'dead-letter').reduce((n, q) => n + q.messages, 0),
        outboxes,
        outboxBacklog: outboxes.reduce((n, o) => n + o.unread + o.pending, 0),
      };
    },
  };
}
