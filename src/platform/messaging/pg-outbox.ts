/**
 * The Postgres outbox: events a Postgres change announces are written in
 * that change's own transaction (`writeToOutbox`), so the change and its
 * event commit together; `PostgresOutboxRelay` publishes them with
 * publisher confirms (publisher.ts) and deletes a row only in the
 * transaction that saw the broker confirm it. A broker that is away leaves
 * the rows where they are, retried every poll, so an event is delayed,
 * never lost. A crash between the confirm and the delete publishes it once
 * more under the same id (at-least-once; consumers deduplicate by id).
 * Several relays (one per api node) share the table: each takes the oldest
 * rows nobody holds (FOR UPDATE SKIP LOCKED).
 */
import type { Pool, PoolClient } from '../db/pool.js';
import { inTransaction } from '../db/pool.js';
import type { Logger } from '../log.js';
import { Pause } from '../time.js';
import type { ConfirmChannel } from './amqp.js';
import type { CloudEvent } from './events.js';
import { publisherOf } from './publisher.js';

/** Writes events to the outbox inside the caller's transaction. */
export async function writeToOutbox(tx: PoolClient, events: CloudEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx.query('INSERT INTO event_outbox (event_id, event) SELECT * FROM unnest($1::text[], $2::jsonb[])', [
    events.map((e) => e.id), events.map((e) => JSON.stringify(e)),
  ]);
}

export interface PostgresOutboxRelayOptions {
  pool: Pool;
  /** The confirm channel to publish on; rejects (or times out) while the broker is away. */
  channel: () => Promise<ConfirmChannel>;
  exchange: string;
  log: Logger;
  pollMs: number;
  /** Rows one round publishes. */
  batch?: number;
  /** Longest wait for the broker's confirms in one round (the rows stay locked meanwhile). */
  confirmTimeoutMs?: number;
}

/** The name the operators' views give the Postgres outbox, beside the Redis outbox streams. */
export const PG_OUTBOX_NAME = 'postgres:event_outbox';

/** Rows waiting in the Postgres outbox (none is held once relayed: a row is deleted when the broker confirmed it), and the oldest one's age. */
export async function pgOutboxBacklog(pool: Pool): Promise<{ waiting: number; oldestAgeMs: number }> {
  const { rows } = await pool.query<{ waiting: number; age_ms: number | null }>(
    'SELECT count(*)::int AS waiting, (extract(epoch FROM now() - min(created_at)) * 1000)::float8 AS age_ms FROM event_outbox',
  );
  return { waiting: rows[0]!.waiting, oldestAgeMs: Math.max(0, Math.round(rows[0]!.age_ms ?? 0)) };
}

export class PostgresOutboxRelay {
  private stopping = false;
  private running?: Promise<void>;
  private readonly pause = new Pause();
  private again = false;
  /** Events published and removed since start. */
  relayed = 0;

  constructor(private readonly o: PostgresOutboxRelayOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Events were committed: relay now rather than at the next poll. */
  kick(): void {
    this.again = true;
    this.pause.wake();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.wake();
    await this.running;
  }

  /** Publishes and removes one batch; returns how many (0: the outbox is empty, or another relay holds what is in it). */
  async relayOnce(): Promise<number> {
    const batch = this.o.batch ?? 100;
    return inTransaction(this.o.pool, async (tx) => {
      const { rows } = await tx.query<{ seq: string; event: CloudEvent }>(
        'SELECT seq, event FROM event_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED', [batch],
      );
      if (rows.length === 0) return 0;
      const timeoutMs = this.o.confirmTimeoutMs ?? 5_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no confirm from the broker within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([this.o.channel().then((ch) => publisherOf(ch).publishEvents(this.o.exchange, rows.map((r) => r.event))), timeout]);
      } finally {
        clearTimeout(timer);
      }
      await tx.query('DELETE FROM event_outbox WHERE seq = ANY($1::bigint[])', [rows.map((r) => r.seq)]);
      return rows.length;
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.again = false;
      let failed = false;
      try {
        let n: number;
        do {
          n = await this.relayOnce();
          this.relayed += n;
        } while (n > 0 && !this.stopping);
      } catch (err) {
        failed = true;
        this.o.log.warn({ err }, 'event outbox: could not relay (kept, retried at the next poll)');
      }
      if (this.stopping || (this.again && !failed)) continue;
      await this.pause.wait(this.o.pollMs);
    }
  }
}
