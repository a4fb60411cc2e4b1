/**
 * Decisions counted per subject (a sale, an auction) and outcome code, for
 * the operators' live view: each api node counts in memory and adds its
 * counts to one Redis hash per subject every `flushMs`, so every node sees
 * the sum of all of them. Counting is a map lookup on the decision path; a
 * refusal answered from memory (a sold-out sale) is counted too, which a
 * counter inside the Lua script could not do.
 *
 * The hashes expire `ttlSeconds` after their last flush: a subject nobody
 * decides about any more leaves nothing behind. A flush that fails is
 * logged once per outage and its counts are kept for the next one.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { Outcome } from './outcomes.js';

export interface TallyOptions {
  /** The hash a subject's counts are kept in (its cluster hash tag included). */
  keyOf(subject: string): string;
  flushMs: number;
  ttlSeconds: number;
  log: Logger;
}

export class OutcomeTally {
  private counts = new Map<string, Map<number, number>>();
  private readonly timer: NodeJS.Timeout;
  private failing = false;
  private flushing: Promise<void> | undefined;

  constructor(private readonly redis: Redis, private readonly options: TallyOptions) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  count(subject: string, code: number, n = 1): void {
    // A subject that does not exist is not counted: any id a client makes up would otherwise leave a hash in Redis.
    if (code === Outcome.NotFound) return;
    let bySubject = this.counts.get(subject);
    if (!bySubject) this.counts.set(subject, (bySubject = new Map()));
    bySubject.set(code, (bySubject.get(code) ?? 0) + n);
  }

  /** Adds what was counted since the last flush to Redis. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.counts.size === 0) return;
    const taken = this.counts;
    this.counts = new Map();
    try {
      await Promise.all([...taken].map(([subject, codes]) => {
        const key = this.options.keyOf(subject);
        return Promise.all([...[...codes].map(([code, n]) => this.redis.hincrby(key, String(code), n)), this.redis.expire(key, this.options.ttlSeconds)]);
      }));
      if (this.failing) this.options.log.info('tally: flushing again');
      this.failing = false;
    } catch (err) {
      // Counted again next time: a count may be added twice when Redis applied part of a failed flush, never lost.
      for (const [subject, codes] of taken) for (const [code, n] of codes) this.count(subject, code, n);
      if (!this.failing) this.options.log.error({ err }, 'tally: flush failed; keeping the counts for the next one');
      this.failing = true;
    }
  }

  /** Reads every subject's counts (all nodes' flushed ones), by outcome code. */
  static async read(redis: Redis, keys: string[]): Promise<Map<number, number>[]> {
    return Promise.all(keys.map(async (key) => {
      const raw = await redis.hgetall(key);
      return new Map(Object.entries(raw).map(([code, n]) => [Number(code), Number(n)]));
    }));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
