/**
 * The webhooks worker's second half: it sends the messages due, each
 * signed (signing.ts) and checked against SSRF again (sender.ts), records
 * every attempt, and decides what comes next:
 *
 *   2xx               succeeded; the endpoint's failing streak ends
 *   410 Gone          failed for good; the endpoint is disabled
 *   anything else     (3xx, 4xx, 5xx, timeout, refused, unreachable) retried
 *                     after the schedule's next wait (STAMPEDE_WEBHOOK_RETRY_SCHEDULE_MS),
 *                     or after Retry-After on a 429 or 503; failed for good
 *                     after the last. An endpoint failing for
 *                     STAMPEDE_WEBHOOK_DISABLE_AFTER_MS without a success
 *                     is disabled and its seller told.
 *
 * Fairness: a message is leased (webhook_deliveries.lease_until) per
 * endpoint, at most STAMPEDE_WEBHOOK_ENDPOINT_CONCURRENCY in flight to one
 * endpoint and STAMPEDE_WEBHOOK_CONCURRENCY in all, oldest due first across
 * endpoints. A slow or dead endpoint fills only its own slots (a dead one
 * for at most the timeout each), and its messages wait in Postgres, never
 * in front of another endpoint's.
 *
 * Recording: an answered attempt frees its slot at once and joins the
 * attempts waiting to be recorded; one transaction records every attempt
 * that waits (one UPDATE of their deliveries, one INSERT of the attempts,
 * the endpoints' streaks), so Postgres sees a commit per batch, not per
 * attempt. Its lease holds the delivery until then. A slot freed wakes the
 * leasing loop only once an eighth of all slots are free (or none is in
 * flight), so one lease query fills many slots instead of one.
 *
 * A worker killed mid-send leaves its lease to pass; another worker then
 * sends the message again under the same webhook-id (a retry, which the
 * receiver deduplicates by that id), never as a new message.
 */
import type { Logger } from '../platform/log.js';
import { Pause } from '../platform/time.js';
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { endpointFailed, endpointsSucceeded, leaseDue, recordAttempts, type DueDelivery, type EndpointRecord, type RecordedAttempt } from './repository.js';
import { signedHeaders } from './signing.js';
import { sendAttempt, type AttemptResult } from './sender.js';

export interface DispatchSettings {
  pool: Pool;
  log: Logger;
  /** Waits before each attempt: [0] before the first, [n] after the n-th failure. */
  scheduleMs: number[];
  retryAfterMaxMs: number;
  timeoutMs: number;
  allowPrivate: boolean;
  concurrency: number;
  perEndpoint: number;
  pollMs: number;
  disableAfterMs: number;
  /** Tells an endpoint's owner it was disabled for failing (the notifications module). */
  endpointDisabled?: (e: EndpointRecord) => Promise<void>;
}

const isSuccess = (r: AttemptResult) => r.statusCode !== null && r.statusCode >= 200 && r.statusCode < 300;

/** Most attempts recorded in one transaction. */
const RECORD_BATCH = 500;

/** An answered attempt waiting to be recorded. */
interface Answered extends RecordedAttempt {
  endpointId: string;
  gone: boolean;
  done: () => void;
}

/**
 * What a batch of attempts does to each endpoint's streak, as if recorded
 * one by one: a success ends the streak (failures before it in the batch
 * count no more); the failures after an endpoint's last success start or
 * continue it, judged at the first and at the last of them; a 410 anywhere
 * disables it.
 */
export function streaksOf(attempts: { endpointId: string; at: Date; ok: boolean; gone: boolean }[]): {
  succeeded: string[]; failed: { endpointId: string; at: Date; gone: boolean }[];
} {
  const byEndpoint = new Map<string, typeof attempts>();
  for (const a of [...attempts].sort((x, y) => x.at.getTime() - y.at.getTime())) {
    const list = byEndpoint.get(a.endpointId);
    if (list) list.push(a);
    else byEndpoint.set(a.endpointId, [a]);
  }
  const succeeded: string[] = [];
  const failed: { endpointId: string; at: Date; gone: boolean }[] = [];
  for (const endpointId of [...byEndpoint.keys()].sort()) {
    const list = byEndpoint.get(endpointId)!;
    const lastOk = list.map((a) => a.ok).lastIndexOf(true);
    if (lastOk >= 0) succeeded.push(endpointId);
    const after = list.slice(lastOk + 1);
    const gone = list.find((a) => a.gone);
    if (gone) failed.push({ endpointId, at: gone.at, gone: true });
    else if (after.length > 0) {
      failed.push({ endpointId, at: after[0]!.at, gone: false });
      if (after.length > 1) failed.push({ endpointId, at: after.at(-1)!.at, gone: false });
    }
  }
  return { succeeded, failed };
}

export class WebhookDispatcher {
  private stopping = false;
  private running?: Promise<void>;
  private readonly busy = new Map<string, number>();
  private inFlight = 0;

  /** Requests open now (metrics). */
  get requestsInFlight(): number {
    return this.inFlight;
  }
  private readonly sends = new Set<Promise<void>>();
  private readonly pause = new Pause();
  /** Attempts made since start, by what came of them. */
  readonly attempts = { succeeded: 0, retried: 0, failed: 0 };

  constructor(private readonly s: DispatchSettings) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** New messages were made, or a slot freed: look again now. */
  wake(): void {
    this.pause.wake();
  }

  /** Stops leasing; the sends in flight finish (their leases end with them). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.running;
    while (this.sends.size > 0) await Promise.all(this.sends);
  }

  /** Held a little past the timeout: DNS, connecting and recording come with the request. */
  private get leaseMs(): number {
    return 2 * this.s.timeoutMs + 1_000;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let leased: DueDelivery[] = [];
      const free = this.s.concurrency - this.inFlight;
      if (free > 0) {
        try {
          leased = await leaseDue(this.s.pool, this.busy, this.s.perEndpoint, free, this.leaseMs);
        } catch (err) {
          this.s.log.error({ err }, 'webhooks: could not lease due deliveries');
        }
        for (const d of leased) this.launch(d);
      }
      if (this.stopping) break;
      // More may be due at once (the lease was full); otherwise wait for a wake-up or the poll.
      if (leased.length > 0 && leased.length === free) continue;
      await this.pause.wait(this.s.pollMs);
    }
  }

  private launch(d: DueDelivery): void {
    this.inFlight++;
    this.busy.set(d.endpointId, (this.busy.get(d.endpointId) ?? 0) + 1);
    const freed = () => {
      this.inFlight--;
      const n = (this.busy.get(d.endpointId) ?? 1) - 1;
      if (n > 0) this.busy.set(d.endpointId, n);
      else this.busy.delete(d.endpointId);
      if (this.inFlight === 0 || this.s.concurrency - this.inFlight >= this.refill) this.wake();
    };
    const send: Promise<void> = this.attempt(d, freed)
      .catch((err: unknown) => this.s.log.error({ err, deliveryId: d.id }, 'webhooks: an attempt failed unrecorded; the lease will pass and it is sent again'))
      .finally(() => this.sends.delete(send));
    this.sends.add(send);
  }

  /** Free slots that make it worth leasing again. */
  private get refill(): number {
    return Math.max(1, Math.floor(this.s.concurrency / 8));
  }

  /** Sends one attempt, frees its slot once answered, and resolves once it is recorded. */
  private async attempt(d: DueDelivery, freed: () => void): Promise<void> {
    const at = new Date();
    let r: AttemptResult;
    try {
      const headers = signedHeaders(d.secrets, d.id, Math.floor(at.getTime() / 1000), d.body);
      r = await sendAttempt(d.url, headers, d.body, { timeoutMs: this.s.timeoutMs, allowPrivate: this.s.allowPrivate });
    } finally {
      freed();
    }
    const ok = isSuccess(r);
    const gone = r.statusCode === 410;
    const failures = d.failures + 1;
    const wait = ok || gone ? undefined : r.retryAfterMs !== undefined ? Math.min(r.retryAfterMs, this.s.retryAfterMaxMs) : this.s.scheduleMs[failures];
    const outcome = ok
      ? { status: 'succeeded' as const, nextAttemptAt: null }
      : wait === undefined ? { status: 'failed' as const, nextAttemptAt: null } : { status: 'pending' as const, nextAttemptAt: new Date(Date.now() + wait) };
    await new Promise<void>((done) => {
      this.answered.push({
        deliveryId: d.id, endpointId: d.endpointId, gone, at, statusCode: r.statusCode, latencyMs: r.latencyMs, response: r.response, error: r.error, ...outcome, done,
      });
      this.recording ??= this.recordAll();
    });
  }

  private readonly answered: Answered[] = [];
  private recording?: Promise<void>;

  /** Records what waits, a batch per transaction, until nothing does. */
  private async recordAll(): Promise<void> {
    try {
      while (this.answered.length > 0) {
        const batch = this.answered.splice(0, RECORD_BATCH);
        try {
          await this.record(batch);
        } catch (err) {
          this.s.log.error({ err, attempts: batch.length }, 'webhooks: recording attempts failed; their leases will pass and they are sent again');
        } finally {
          for (const a of batch) a.done();
        }
      }
    } finally {
      // Cleared in the same turn as the last look at `answered`: an attempt answered after it starts a new round.
      this.recording = undefined;
    }
  }

  private async record(batch: Answered[]): Promise<void> {
    const { recorded, disabled } = await inTransaction(this.s.pool, async (tx) => {
      const recorded = await recordAttempts(tx, batch);
      const { succeeded, failed } = streaksOf(batch.filter((a) => recorded.has(a.deliveryId)).map((a) => ({ endpointId: a.endpointId, at: a.at, ok: a.status === 'succeeded', gone: a.gone })));
      await endpointsSucceeded(tx, succeeded);
      const disabled: EndpointRecord[] = [];
      for (const f of failed) {
        const d = await endpointFailed(tx, f.endpointId, f.at, f.gone, this.s.disableAfterMs);
        if (d) disabled.push(d);
      }
      return { recorded, disabled };
    });
    for (const a of batch) {
      if (!recorded.has(a.deliveryId)) continue;
      if (a.status === 'succeeded') this.attempts.succeeded++;
      else if (a.status === 'pending') this.attempts.retried++;
      else this.attempts.failed++;
    }
    for (const d of disabled) {
      this.s.log.warn({ endpointId: d.id, reason: d.disabledReason }, 'webhooks: endpoint disabled');
      if (d.disabledReason === 'failing' && this.s.endpointDisabled) {
        await this.s.endpointDisabled(d).catch((err: unknown) => this.s.log.error({ err, endpointId: d.id }, 'webhooks: could not tell the seller'));
      }
    }
  }
}
