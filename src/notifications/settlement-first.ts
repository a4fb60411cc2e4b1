/**
 * Settlement first: while the orders queue holds more than `above` ready
 * purchase events (a flash sale's backlog), the notifications worker waits
 * before each batch, so the CPU and Postgres on a busy host go to settling
 * orders rather than to telling buyers of the ones settled. It waits at most
 * `maxWaitMs` per batch, so buyers are told even under a backlog that never
 * clears; what arrives meanwhile joins the next batch (bigger batches, fewer
 * transactions). The queue's depth is read with a passive declare on the
 * worker's own channel, once per `pollMs`; a worker that waited goes on
 * only once the queue was quiet on three looks in a row, since settlement
 * empties the queue for a moment between the relay's bursts.
 */
import type { ConfirmChannel } from '../platform/messaging/amqp.js';

/** Looks in a row the queue must be quiet before a worker that waited goes on. */
const QUIET_LOOKS = 3;

export interface SettlementFirstSettings {
  /** The orders queue. */
  queue: string;
  /** Ready messages above which the worker waits (0: whenever any waits). */
  above: number;
  maxWaitMs: number;
  pollMs?: number;
}

export class SettlementFirst {
  /** Batches that waited, and for how long in all (for operators and tests). */
  waited = 0;
  waitedMs = 0;

  constructor(private readonly settings: SettlementFirstSettings) {}

  /** Resolves once the orders queue is at most `above` deep, `maxWaitMs` passed, or `stopping()` says so. */
  async wait(ch: ConfirmChannel, stopping: () => boolean): Promise<void> {
    const { queue, above, maxWaitMs, pollMs = 100 } = this.settings;
    const from = Date.now();
    let waiting = false;
    let quiet = 0;
    while (!stopping() && Date.now() - from < maxWaitMs) {
      const { messageCount } = await ch.checkQueue(queue);
      quiet = messageCount <= above ? quiet + 1 : 0;
      // Quiet on the first look, or on QUIET_LOOKS looks in a row once it waited: a backlog between two bursts is still one.
      if (quiet >= (waiting ? QUIET_LOOKS : 1)) break;
      waiting = true;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    if (waiting) {
      this.waited++;
      this.waitedMs += Date.now() - from;
    }
  }
}
