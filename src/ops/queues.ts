/** The operators' view of queues and outbox streams. */
import type { Redis } from 'ioredis';
import type { AmqpLink } from '../platform/messaging/link.js';
import { allQueues, type Topology } from '../platform/messaging/topology.js';
import { OUTBOX_REGISTRY, RELAY_GROUP } from '../platform/messaging/outbox.js';

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
}

export interface OpsView {
  queues(): Promise<{ queues: QueueStat[]; deadLetters: number; outboxes: OutboxStat[]; outboxBacklog: number }>;
}

export function createOpsView(redis: Redis, link: AmqpLink, topology: Topology): OpsView {
  return {
    async queues() {
      const ch = link.channel();
      const queues: QueueStat[] = [];
      for (const q of allQueues(topology)) {
        const s = await ch.checkQueue(q.queue);
        queues.push({ ...q, messages: s.messageCount, consumers: s.consumerCount });
      }
      const streams = (await redis.smembers(OUTBOX_REGISTRY)).sort();
      const p = redis.pipeline();
      for (const s of streams) {
        p.xlen(s);
        p.xinfo('GROUPS', s);
      }
      const replies = (await p.exec()) ?? [];
      const outboxes: OutboxStat[] = streams.map((stream, i) => {
        const length = Number(replies[2 * i]?.[1] ?? 0);
        const groups = (replies[2 * i + 1]?.[1] ?? []) as (string | number)[][];
        let pending = 0;
        let unread = length;
        for (const g of groups) {
          const f: Record<string, string | number> = {};
          for (let k = 0; k + 1 < g.length; k += 2) f[String(g[k])] = g[k + 1]!;
          if (f.name !== RELAY_GROUP) continue;
          pending = Number(f.pending ?? 0);
          // `lag` is null when Redis cannot tell; then every entry but the pending ones may be unread.
          unread = f.lag === null || f.lag === undefined ? Math.max(0, length - pending) : Number(f.lag);
        }
        return { stream, length, unread, pending };
      });
      return {
        queues,
        deadLetters: queues.filter((q) => q.kind === 'dead-letter').reduce((n, q) => n + q.messages, 0),
        outboxes,
        outboxBacklog: outboxes.reduce((n, o) => n + o.unread + o.pending, 0),
      };
    },
  };
}
