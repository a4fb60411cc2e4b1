/**
 * The scheduler's part of scheduled notifications: each tick it claims the
 * sends that are due off the due index (lua/notification/claimDueSends-2.lua:
 * taken off the index and appended to the notifications' outbox in one call,
 * so one scheduler claims each, and none is lost by a scheduler dying after
 * its claim); the relay publishes them and the notifications worker fans
 * them out. It never reads the table on a tick: the index is rebuilt from it
 * once, at start (ScheduledSends.reindex).
 */
import type { Redis } from '../platform/redis/client.js';
import type { Logger } from '../platform/log.js';
import { OUTBOX_REGISTRY } from '../platform/messaging/outbox.js';
import { NOTIFICATIONS_OUTBOX } from './keys.js';
import { claimDueSends } from './scripts.js';
import type { ScheduledSends } from './sends.js';

/** The most sends one claim takes; a tick claims again while claims come back full. */
const SENDS_PER_CLAIM = 100;

export interface SendSchedulerOptions {
  redis: Redis;
  sends: ScheduledSends;
  log: Logger;
  tickMs: number;
}

export class SendScheduler {
  private running?: Promise<void>;
  private stopped = false;
  private wake?: () => void;
  /** Sends claimed since start (for operators and tests). */
  claimed = 0;

  constructor(private readonly options: SendSchedulerOptions) {}

  /** Rebuilds the due index from Postgres, then ticks. */
  async start(): Promise<number> {
    const { redis, sends } = this.options;
    // The relay drains the streams of the registry: ours is one from the start.
    await redis.sadd(OUTBOX_REGISTRY, NOTIFICATIONS_OUTBOX);
    const indexed = await sends.reindex();
    this.running = this.run();
    return indexed;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.tick().catch((err) => this.options.log.error({ err }, 'notification send scheduler tick failed'));
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, this.options.tickMs);
      });
    }
  }

  async tick(): Promise<void> {
    const { redis, log } = this.options;
    for (;;) {
      const claimed = await claimDueSends(redis, SENDS_PER_CLAIM);
      if (claimed.length === 0) return;
      this.claimed += claimed.length;
      // A Redis that lost the registry (a flush) must not strand the due events.
      await redis.sadd(OUTBOX_REGISTRY, NOTIFICATIONS_OUTBOX);
      log.info({ sends: claimed }, 'notification sends due');
      if (claimed.length < SENDS_PER_CLAIM) return;
    }
  }
}
