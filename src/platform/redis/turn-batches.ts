/**
 * Decisions batched per event-loop turn: the requests a process makes about
 * the same sale or auction in one turn (uWS hands it every request that
 * arrived) go to Redis as one script call, decided in the order they were
 * made, each exactly as if alone. What they share (the sale or auction hash,
 * the clock, counters written once) is then read and written once per call
 * instead of once per request. The script wrapper answers one settled result
 * per request; a call Redis refuses (a script error) rejects every request
 * of it with that error, as a call of one would.
 */
import type { Redis } from 'ioredis';

/** Decides a batch about one subject (a sale id, an auction id): one result per request, in order. */
export type DecideBatch<Request, Result> = (redis: Redis, subject: string, requests: Request[]) => Promise<PromiseSettledResult<Result>[]>;

interface Pending<Request, Result> {
  request: Request;
  resolve: (result: Result) => void;
  reject: (err: unknown) => void;
}

export class TurnBatches<Request, Result> {
  /** Requests waiting for this event-loop turn to end, per client, per subject. */
  private readonly pending = new WeakMap<Redis, Map<string, Pending<Request, Result>[]>>();

  /** `maxPerCall`: a call holds Redis for every request in it, so a larger batch delays every other caller. */
  constructor(private readonly maxPerCall: number, private readonly decide: DecideBatch<Request, Result>) {}

  /** Decides `request` about `subject` with the others of this turn. */
  add(redis: Redis, subject: string, request: Request): Promise<Result> {
    return new Promise((resolve, reject) => {
      let bySubject = this.pending.get(redis);
      if (!bySubject) {
        bySubject = new Map();
        this.pending.set(redis, bySubject);
      }
      if (bySubject.size === 0) setImmediate(() => this.flush(redis));
      let queue = bySubject.get(subject);
      if (!queue) {
        queue = [];
        bySubject.set(subject, queue);
      }
      queue.push({ request, resolve, reject });
    });
  }

  private flush(redis: Redis): void {
    const bySubject = this.pending.get(redis)!;
    this.pending.set(redis, new Map());
    for (const [subject, queue] of bySubject) {
      for (let i = 0; i < queue.length; i += this.maxPerCall) this.send(redis, subject, queue.slice(i, i + this.maxPerCall));
    }
  }

  private send(redis: Redis, subject: string, batch: Pending<Request, Result>[]): void {
    this.decide(redis, subject, batch.map((pending) => pending.request)).then(
      (results) => {
        batch.forEach((pending, i) => {
          const result = results[i]!;
          if (result.status === 'fulfilled') pending.resolve(result.value);
          else pending.reject(result.reason);
        });
      },
      (err: unknown) => {
        for (const pending of batch) pending.reject(err);
      },
    );
  }
}
