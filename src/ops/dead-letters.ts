/**
 * Dead letters, for operators. Workers dead-letter into each queue's `.dlq`
 * (see BatchConsumer), with the reason in `x-stampede-last-error`. The
 * keeper (run by the scheduler role) moves each one from the broker into
 * Postgres (dead_letters), acking it only once the row is committed: a
 * keeper that dies in between archives it again, as the same row. There an
 * operator pages through a queue's dead letters, reads one, replays one or
 * all, or purges them.
 *
 * A replay publishes the message's body back to its queue with its id and
 * type, confirmed by the broker, and records it replayed in the same
 * transaction that holds its row (two replays never both send it; a replay
 * that dies before its commit sends it again, which the workers settle
 * once: settlement is idempotent, so an order settled meanwhile changes
 * nothing). A message that fails again is dead-lettered again, a new row.
 */
import { createHash } from 'node:crypto';
import { inTransaction, type Pool } from '../platform/db/pool.js';
import type { Logger } from '../platform/log.js';
import { AppError } from '../platform/errors.js';
import { keepConnected, type ConfirmChannel, type ConsumeMessage } from '../platform/messaging/amqp.js';
import { publisherOf } from '../platform/messaging/publisher.js';
import { assertTopology, deadLetterQueue, type Concern, type Topology } from '../platform/messaging/topology.js';
import type { QueueStat } from './queues.js';
import {
  archiveDeadLetter, deadLetterCounts, deadLettersOf, findDeadLetter, lockWaiting, purgeWaiting, recordReplayed,
  type DeadLetterRecord, type NewDeadLetter,
} from './repository.js';

/** The headers a worker sets on a message it retries or dead-letters (not sent again with a replay: it starts afresh). */
const WORKER_HEADERS = /^x-stampede-/;
/** Most dead letters replayed per transaction by a replay of all. */
const REPLAY_BATCH = 100;

/** What a dead letter looks like to an operator: the body as JSON where it is JSON, else as text. */
export interface DeadLetterView {
  id: number;
  queue: string;
  messageId: string | null;
  type: string | null;
  lastError: string | null;
  deadLetteredAt: string;
  replayedAt: string | null;
  headers: Record<string, unknown>;
  body: unknown;
}

export function viewOfDeadLetter(d: DeadLetterRecord, queueName: string): DeadLetterView {
  const text = d.body.toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a poison message, say): shown as the text it is.
  }
  return {
    id: d.id, queue: queueName, messageId: d.messageId, type: d.type, lastError: d.lastError, deadLetteredAt: d.deadLetteredAt.toISOString(),
    replayedAt: d.replayedAt?.toISOString() ?? null, headers: d.headers, body,
  };
}

/** The row a dead-lettered message becomes. */
export function deadLetterOf(concern: Concern, msg: ConsumeMessage): NewDeadLetter {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const at = Date.parse(String(headers['x-stampede-dead-lettered-at'] ?? ''));
  const messageId = typeof msg.properties.messageId === 'string' ? msg.properties.messageId : null;
  const fingerprint = createHash('sha256').update(`${concern.queue}\u0000${messageId ?? ''}\u0000${String(headers['x-stampede-dead-lettered-at'] ?? '')}\u0000`).update(msg.content).digest('hex');
  return {
    queue: concern.queue, fingerprint, messageId, type: typeof msg.properties.type === 'string' ? msg.properties.type : null,
    contentType: typeof msg.properties.contentType === 'string' ? msg.properties.contentType : null, body: msg.content, headers,
    lastError: typeof headers['x-stampede-last-error'] === 'string' ? headers['x-stampede-last-error'] : null,
    deadLetteredAt: Number.isFinite(at) ? new Date(at) : new Date(),
  };
}

/** Moves every dead-letter queue's messages into Postgres, for as long as it runs. */
export class DeadLetterKeeper {
  private stopping = false;
  private loop?: Promise<void>;
  /** Resolves when stop() is called: a session ends then, however far it got. */
  private readonly stopped: Promise<void>;
  private stop_: () => void = () => {};
  /** Dead letters archived since start. */
  archived = 0;

  constructor(private readonly deps: { pool: Pool; amqpUrl: string; topology: Topology; log: Logger }) {
    this.stopped = new Promise((resolve) => (this.stop_ = resolve));
  }

  start(): void {
    this.loop ??= keepConnected({
      url: this.deps.amqpUrl, name: 'dead-letter keeper', stopping: () => this.stopping,
      onLost: (err) => this.deps.log.warn({ err }, 'dead-letter keeper: broker connection lost; reconnecting'),
      session: async (s) => {
        const ch = await s.conn.createChannel();
        ch.on('error', () => {});
        await assertTopology(ch, this.deps.topology);
        await ch.prefetch(50);
        for (const concern of this.deps.topology.concerns) {
          await ch.consume(deadLetterQueue(concern), (msg) => {
            if (!msg) return;
            archiveDeadLetter(this.deps.pool, deadLetterOf(concern, msg)).then(
              () => {
                this.archived++;
                try {
                  ch.ack(msg);
                } catch {
                  // The session ended meanwhile: the broker gives it back, and archiving it again keeps one row.
                }
              },
              (err: unknown) => {
                // Left unacked: Postgres is away. The message returns to the queue when this session ends.
                this.deps.log.error({ err, queue: concern.queue }, 'dead-letter keeper: could not archive a dead letter; it stays in the queue');
                setTimeout(() => { try { ch.nack(msg, false, true); } catch { /* the channel is gone: the broker requeues it */ } }, 1_000).unref();
              },
            );
          });
        }
        s.established();
        // keepConnected closes the connection once the session returns: unacked dead letters go back to their queue.
        await Promise.race([s.closed, this.stopped]);
      },
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stop_();
    await this.loop;
  }
}

/** What operators do with the archive. `concern` names: orders, auctions, notifications, email, sms. */
export class DeadLetters {
  constructor(private readonly pool: Pool, private readonly topology: Topology, private readonly confirmChannel: () => Promise<ConfirmChannel>) {}

  /** The concern a path names (its short name); NOT_FOUND otherwise. */
  concernOf(name: string): Concern {
    const concern = (CONCERN_NAMES as readonly string[]).includes(name) ? this.topology[name as ConcernName] : undefined;
    if (!concern) throw new AppError('NOT_FOUND', `no queue ${name}: one of ${CONCERN_NAMES.join(', ')}`);
    return concern;
  }

  async summary(): Promise<{ queue: ConcernName; waiting: number; replayed: number; oldestWaiting: string | null }[]> {
    const counts = new Map((await deadLetterCounts(this.pool)).map((c) => [c.queue, c]));
    return CONCERN_NAMES.map((name) => {
      const c = counts.get(this.topology[name].queue);
      return { queue: name, waiting: c?.waiting ?? 0, replayed: c?.replayed ?? 0, oldestWaiting: c?.oldestWaiting?.toISOString() ?? null };
    });
  }

  /** Each concern's archived dead letters, with those still in its `.dlq` that the keeper has not archived yet. */
  async overview(broker: QueueStat[]): Promise<{ queue: ConcernName; waiting: number; replayed: number; oldestWaiting: string | null; unarchived: number }[]> {
    const inQueue = new Map(broker.filter((q) => q.kind === 'dead-letter').map((q) => [q.concern, q.messages]));
    return (await this.summary()).map((a) => ({ ...a, unarchived: inQueue.get(this.concernOf(a.queue).queue) ?? 0 }));
  }

  async list(name: string, limit: number, before: number | undefined, waiting: boolean): Promise<{ items: DeadLetterView[]; next: string | null }> {
    const concern = this.concernOf(name);
    const rows = await deadLettersOf(this.pool, concern.queue, limit, before, waiting);
    return { items: rows.map((r) => viewOfDeadLetter(r, name)), next: rows.length === limit ? String(rows[rows.length - 1]!.id) : null };
  }

  async get(name: string, id: number): Promise<DeadLetterView> {
    const d = await findDeadLetter(this.pool, this.concernOf(name).queue, id);
    if (!d) throw new AppError('NOT_FOUND', 'no such dead letter');
    return viewOfDeadLetter(d, name);
  }

  /** Replays one waiting dead letter; NOT_FOUND for none, CONFLICT for one replayed already (or being replayed). */
  async replayOne(name: string, id: number): Promise<void> {
    const concern = this.concernOf(name);
    const replayed = await this.replay(concern, 1, id);
    if (replayed === 0) {
      const d = await findDeadLetter(this.pool, concern.queue, id);
      if (!d) throw new AppError('NOT_FOUND', 'no such dead letter');
      throw new AppError('CONFLICT', d.replayedAt ? `it was replayed already (${d.replayedAt.toISOString()})` : 'another replay holds it');
    }
  }

  /** Replays every waiting dead letter of the queue, oldest first; how many. */
  async replayAll(name: string): Promise<number> {
    const concern = this.concernOf(name);
    let total = 0;
    for (;;) {
      const n = await this.replay(concern, REPLAY_BATCH);
      total += n;
      if (n < REPLAY_BATCH) return total;
    }
  }

  /** Deletes the waiting dead letters of the queue (up to id `upTo`, the newest the operator saw, when given); how many. */
  async purge(name: string, upTo: number | undefined): Promise<number> {
    return purgeWaiting(this.pool, this.concernOf(name).queue, upTo);
  }

  private async replay(concern: Concern, limit: number, id?: number): Promise<number> {
    const ch = await this.confirmChannel();
    return inTransaction(this.pool, async (tx) => {
      const rows = await lockWaiting(tx, concern.queue, limit, id);
      if (rows.length === 0) return 0;
      const publisher = publisherOf(ch);
      await Promise.all(rows.map((d) => publisher.sendToQueue(concern.queue, d.body, {
        messageId: d.messageId ?? `dead-letter:${d.id}`, type: d.type ?? undefined, contentType: d.contentType ?? undefined,
        headers: Object.fromEntries(Object.entries(d.headers).filter(([k]) => !WORKER_HEADERS.test(k))),
      })));
      await recordReplayed(tx, rows.map((d) => d.id));
      return rows.length;
    });
  }
}

export const CONCERN_NAMES = ['orders', 'auctions', 'notifications', 'email', 'sms'] as const;
export type ConcernName = (typeof CONCERN_NAMES)[number];
