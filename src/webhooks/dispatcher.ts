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
 * A worker killed mid-send leaves its lease to pass; another worker then
 * sends the message again under the same webhook-id (a retry, which the
 * receiver deduplicates by that id), never as a new message.
 */
import type { Logger } from '../platform/log.js';
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { endpointFailed, endpointSucceeded, leaseDue, recordAttempt, type DueDelivery, type EndpointRecord } from './repository.js';
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
  private wakeUp?: () => void;
  /** Attempts made since start, by what came of them. */
  readonly attempts = { succeeded: 0, retried: 0, failed: 0 };

  constructor(private readonly s: DispatchSettings) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** New messages were made, or a slot freed: look again now. */
  wake(): void {
    this.wakeUp?.();
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
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.s.pollMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wakeUp = done;
      });
      this.wakeUp = undefined;
    }
  }

  private launch(d: DueDelivery): void {
    this.inFlight++;
    this.busy.set(d.endpointId, (this.busy.get(d.endpointId) ?? 0) + 1);
    const send: Promise<void> = this.deliver(d)
      .catch((err: unknown) => this.s.log.error({ err, deliveryId: d.id }, 'webhooks: recording an attempt failed; the lease will pass and it is sent again'))
      .finally(() => {
        this.sends.delete(send);
        this.inFlight--;
        const n = (this.busy.get(d.endpointId) ?? 1) - 1;
        if (n > 0) this.busy.set(d.endpointId, n);
        else this.busy.delete(d.endpointId);
        this.wake();
      });
    this.sends.add(send);
  }

  private async deliver(d: DueDelivery): Promise<void> {
    const at = new Date();
    const headers = signedHeaders(d.secrets, d.id, Math.floor(at.getTime() / 1000), d.body);
    const r = await sendAttempt(d.url, headers, d.body, { timeoutMs: this.s.timeoutMs, allowPrivate: this.s.allowPrivate });
    const attempt = { at, statusCode: r.statusCode, latencyMs: r.latencyMs, response: r.response, error: r.error };
    const ok = isSuccess(r);
    const gone = r.statusCode === 410;
    const failures = d.failures + 1;
    const wait = ok || gone ? undefined : r.retryAfterMs !== undefined ? Math.min(r.retryAfterMs, this.s.retryAfterMaxMs) : this.s.scheduleMs[failures];
    const outcome = ok
      ? { status: 'succeeded' as const, nextAttemptAt: null }
      : wait === undefined ? { status: 'failed' as const, nextAttemptAt: null } : { status: 'pending' as const, nextAttemptAt: new Date(Date.now() + wait) };
    const disabled = await inTransaction(this.s.pool, async (tx) => {
      if (!(await recordAttempt(tx, d.id, attempt, outcome))) return undefined;
      if (ok) {
        await endpointSucceeded(tx, d.endpointId);
        return undefined;
      }
      return endpointFailed(tx, d.endpointId, at, gone, this.s.disableAfterMs);
    });
    if (ok) this.attempts.succeeded++;
    else if (outcome.status === 'pending') this.attempts.retried++;
    else this.attempts.failed++;
    if (disabled) {
      this.s.log.warn({ endpointId: disabled.id, reason: disabled.disabledReason }, 'webhooks: endpoint disabled');
      if (disabled.disabledReason === 'failing' && this.s.endpointDisabled) {
        await this.s.endpointDisabled(disabled).catch((err: unknown) => this.s.log.error({ err, endpointId: disabled.id }, 'webhooks: could not tell the seller'));
      }
    }
  }
}
