/**
 * What every settling worker shares: it consumes one concern's queue with
 * manual acks and a prefetch window, parses each message strictly (a
 * message that can never be handled goes straight to the dead-letter
 * queue), settles what arrived together in one call (one transaction), and
 * acks only after that call returned. A failed batch is retried message by
 * message; a message that still fails goes to the next delay tier, and
 * after the last one to the dead-letter queue, never round an endless
 * requeue loop. The workers (orders, auctions) only say how to parse and
 * how to settle.
 */
import type { Logger } from '../log.js';
import { keepConnected, type Channel, type ConfirmChannel, type Connection, type ConsumeMessage } from '../messaging/amqp.js';
import { assertTopology, deadLetterQueue, retryQueue, type Concern, type Topology } from '../messaging/topology.js';

/** What every worker is configured with (the STAMPEDE_WORKER_* settings and the topology). */
export interface WorkerSettings {
  amqpUrl: string;
  log: Logger;
  prefetch: number;
  batch: number;
  /** Batches settled side by side (each its own transaction). */
  concurrency: number;
  topology: Topology;
}

export interface ConsumerSettings extends WorkerSettings {
  /** Names the worker in logs and in the broker's connection list. */
  name: string;
  concern: Concern;
}

export const ATTEMPT_HEADER = 'x-stampede-attempt';

/** A message no retry can help: it goes to the dead-letter queue at once. */
export class PoisonMessageError extends Error {}

/** Parses a message body as a JSON object (a CloudEvent envelope), or throws PoisonMessageError. */
export function jsonObjectOf(msg: ConsumeMessage, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(msg.content.toString('utf8'));
  } catch {
    throw new PoisonMessageError('message is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PoisonMessageError(`message is not ${what}`);
  return parsed as Record<string, unknown>;
}

export abstract class BatchConsumer<E> {
  private stopping = false;
  private running?: Promise<void>;
  private conn?: Connection;
  private ch?: Channel;
  private consumerTag?: string;
  private buffer: ConsumeMessage[] = [];
  private flushing?: Promise<void>;
  /** Events settled (first time or again) since start, for tests and ops. */
  settled = 0;

  constructor(private readonly o: ConsumerSettings) {}

  /**
   * Throws PoisonMessageError for a message that can never be settled;
   * null for a message routed here that is not for this worker (acked as is).
   */
  protected abstract parse(msg: ConsumeMessage): E | null;

  /**
   * Settles the events; may publish on `pub` (a confirm channel) and must
   * wait for the broker's confirms before resolving. Throwing retries them.
   */
  protected abstract settle(events: E[], pub: ConfirmChannel): Promise<void>;

  start(): void {
    this.running ??= this.run();
  }

  /** Stops consuming, finishes the batch in flight; unacked messages go back to the queue. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.ch && this.consumerTag) await this.ch.cancel(this.consumerTag).catch(() => {});
    await this.flushing;
    await this.conn?.close().catch(() => {});
    await this.running;
  }

  private run(): Promise<void> {
    const { name, concern } = this.o;
    return keepConnected({
      url: this.o.amqpUrl,
      name: `${name} ${process.pid}`,
      stopping: () => this.stopping,
      onConnection: (conn) => {
        this.conn = conn;
        if (!conn) this.ch = undefined;
      },
      onLost: (err) => this.o.log.error({ err }, `${name} lost the broker; reconnecting`),
      session: async (s) => {
        const ch = await s.conn.createChannel();
        const pub = await s.conn.createConfirmChannel();
        await assertTopology(ch, this.o.topology);
        await ch.prefetch(this.o.prefetch);
        this.ch = ch;
        this.buffer = [];
        const { consumerTag } = await ch.consume(concern.queue, (msg) => msg && this.enqueue(ch, pub, msg), { noAck: false });
        this.consumerTag = consumerTag;
        s.established();
        this.o.log.info({ queue: concern.queue }, `${name} consuming`);
        await s.closed;
      },
    });
  }

  private enqueue(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage): void {
    this.buffer.push(msg);
    if (!this.flushing) this.flushing = this.drain(ch, pub);
  }

  private async drain(ch: Channel, pub: ConfirmChannel): Promise<void> {
    // Let the rest of a burst arrive, so it is settled in one transaction.
    await new Promise((r) => setImmediate(r));
    const lanes: Promise<void>[] = [];
    for (let i = 0; i < this.o.concurrency; i++) lanes.push(this.lane(ch, pub));
    await Promise.all(lanes);
    this.flushing = undefined;
    // A message that arrived as the last lane finished starts a new drain.
    if (this.buffer.length > 0 && !this.stopping) this.flushing = this.drain(ch, pub);
  }

  /** One transaction stream: takes batches off the buffer until it is empty. */
  private async lane(ch: Channel, pub: ConfirmChannel): Promise<void> {
    try {
      while (this.buffer.length > 0) {
        const batch = this.buffer.splice(0, this.o.batch);
        await this.settleBatch(ch, pub, batch);
      }
    } catch (err) {
      // The channel or broker went away mid-batch: unacked messages are redelivered.
      this.o.log.error({ err }, `${this.o.name} batch interrupted; its messages will be redelivered`);
      this.buffer = [];
    }
  }

  private async settleBatch(ch: Channel, pub: ConfirmChannel, msgs: ConsumeMessage[]): Promise<void> {
    const good: { msg: ConsumeMessage; ev: E }[] = [];
    for (const msg of msgs) {
      try {
        const ev = this.parse(msg);
        if (ev === null) ch.ack(msg);
        else good.push({ msg, ev });
      } catch (err) {
        await this.deadLetter(ch, pub, msg, err as Error);
      }
    }
    if (good.length === 0) return;
    try {
      await this.settle(good.map((g) => g.ev), pub);
      this.settled += good.length;
      for (const g of good) ch.ack(g.msg);
    } catch (err) {
      if (good.length === 1) return this.retryLater(ch, pub, good[0]!.msg, err as Error);
      this.o.log.warn({ err, size: good.length }, 'batch settlement failed; settling one by one');
      for (const g of good) {
        try {
          await this.settle([g.ev], pub);
          this.settled += 1;
          ch.ack(g.msg);
        } catch (one) {
          await this.retryLater(ch, pub, g.msg, one as Error);
        }
      }
    }
  }

  private async retryLater(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage, err: Error): Promise<void> {
    const attempt = Number(msg.properties.headers?.[ATTEMPT_HEADER] ?? 0);
    const delay = this.o.topology.retryDelaysMs[attempt];
    if (delay === undefined) return this.deadLetter(ch, pub, msg, err);
    this.o.log.warn({ err, messageId: msg.properties.messageId, attempt: attempt + 1, delayMs: delay }, 'settlement failed; retrying later');
    await republish(pub, retryQueue(this.o.concern, delay), msg, { [ATTEMPT_HEADER]: attempt + 1, 'x-stampede-last-error': err.message });
    ch.ack(msg);
  }

  private async deadLetter(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage, err: Error): Promise<void> {
    this.o.log.error({ err, messageId: msg.properties.messageId }, 'message dead-lettered');
    await republish(pub, deadLetterQueue(this.o.concern), msg, { 'x-stampede-last-error': err.message, 'x-stampede-dead-lettered-at': new Date().toISOString() });
    ch.ack(msg);
  }
}

/** Publishes a copy straight to a queue and waits for the broker's confirm. */
function republish(pub: ConfirmChannel, queue: string, msg: ConsumeMessage, headers: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    pub.sendToQueue(queue, msg.content, { ...msg.properties, headers: { ...msg.properties.headers, ...headers }, persistent: true }, (err: unknown) =>
      err ? reject(err) : resolve(),
    );
  });
}
