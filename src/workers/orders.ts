/**
 * The orders worker: consumes `stampede.orders` with manual acks and a
 * prefetch window, settles what arrived together in one Postgres
 * transaction, applies each outcome to the sale's live state in Redis
 * (exactly once, by the settlePurchase script), then acks. A failed batch is
 * retried message by message; a message that still fails goes to the next
 * delay tier, and after the last one to the dead-letter queue.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { Pool } from '../db/pool.js';
import { settleBatch, type SettlementEvent, type SettlementResult } from '../db/settlement.js';
import { settlePurchase } from '../redis/sale-scripts.js';
import { keepConnected, type Channel, type ConfirmChannel, type Connection, type ConsumeMessage } from '../messaging/amqp.js';
import { assertTopology, deadLetterQueue, retryQueue, type Topology } from '../messaging/topology.js';

export interface OrdersWorkerOptions {
  redis: Redis;
  pool: Pool;
  amqpUrl: string;
  log: Logger;
  prefetch: number;
  batch: number;
  /** Batches settled side by side (each its own transaction). */
  concurrency: number;
  topology: Topology;
}

const ATTEMPT_HEADER = 'x-stampede-attempt';

export class PoisonMessageError extends Error {}

export function parseSettlementEvent(msg: ConsumeMessage): SettlementEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(msg.content.toString('utf8'));
  } catch {
    throw new PoisonMessageError('message is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PoisonMessageError('message is not a purchase event');
  const ev = parsed as { id?: unknown; type?: unknown; time?: unknown; data?: unknown };
  const d = ev.data as Record<string, unknown> | null | undefined;
  // Money is only ever moved by well-formed events: a negative price or a
  // quantity of zero would mint or hide money, so they never reach Postgres.
  const ok =
    typeof ev.id === 'string' && ev.id !== '' && typeof ev.time === 'string' && Number.isFinite(Date.parse(ev.time)) &&
    d !== null && typeof d === 'object' && !Array.isArray(d) &&
    typeof d.purchaseId === 'string' && typeof d.saleId === 'string' && typeof d.buyerId === 'string' &&
    Number.isSafeInteger(d.quantity) && (d.quantity as number) > 0 &&
    Number.isSafeInteger(d.unitPrice) && (d.unitPrice as number) >= 0 &&
    Number.isSafeInteger((d.quantity as number) * (d.unitPrice as number)) &&
    typeof d.currency === 'string' && /^[A-Z]{3}$/.test(d.currency) &&
    Number.isSafeInteger(d.acceptedAt) && (d.acceptedAt as number) > 0;
  if (!ok) throw new PoisonMessageError('message is not a purchase event');
  const time = Date.parse(ev.time as string);
  if (ev.type === 'stampede.purchase.accepted.v1') return { eventId: ev.id as string, type: 'accepted', time, data: d as never };
  if (ev.type === 'stampede.purchase.cancel_requested.v1') return { eventId: ev.id as string, type: 'cancel_requested', time, data: d as never };
  throw new PoisonMessageError(`unknown event type ${String(ev.type)}`);
}

export class OrdersWorker {
  private stopping = false;
  private running?: Promise<void>;
  private conn?: Connection;
  private ch?: Channel;
  private consumerTag?: string;
  private buffer: ConsumeMessage[] = [];
  private flushing?: Promise<void>;
  /** Orders settled (first time or again) since start, for tests and ops. */
  settled = 0;

  constructor(private readonly o: OrdersWorkerOptions) {}

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
    return keepConnected({
      url: this.o.amqpUrl,
      name: `orders-worker ${process.pid}`,
      stopping: () => this.stopping,
      onConnection: (conn) => {
        this.conn = conn;
        if (!conn) this.ch = undefined;
      },
      onLost: (err) => this.o.log.error({ err }, 'orders worker lost the broker; reconnecting'),
      session: async (s) => {
        const ch = await s.conn.createChannel();
        const pub = await s.conn.createConfirmChannel();
        await assertTopology(ch, this.o.topology);
        await ch.prefetch(this.o.prefetch);
        this.ch = ch;
        this.buffer = [];
        const { consumerTag } = await ch.consume(this.o.topology.orders.queue, (msg) => msg && this.enqueue(ch, pub, msg), { noAck: false });
        this.consumerTag = consumerTag;
        s.established();
        this.o.log.info({ queue: this.o.topology.orders.queue }, 'orders worker consuming');
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
        await this.settle(ch, pub, batch);
      }
    } catch (err) {
      // The channel or broker went away mid-batch: unacked messages are redelivered.
      this.o.log.error({ err }, 'orders batch interrupted; its messages will be redelivered');
      this.buffer = [];
    }
  }

  private async settle(ch: Channel, pub: ConfirmChannel, msgs: ConsumeMessage[]): Promise<void> {
    const good: { msg: ConsumeMessage; ev: SettlementEvent }[] = [];
    for (const msg of msgs) {
      try {
        good.push({ msg, ev: parseSettlementEvent(msg) });
      } catch (err) {
        await this.deadLetter(ch, pub, msg, err as Error);
      }
    }
    if (good.length === 0) return;
    try {
      await this.apply(good.map((g) => g.ev));
      for (const g of good) ch.ack(g.msg);
    } catch (err) {
      if (good.length === 1) return this.retryLater(ch, pub, good[0]!.msg, err as Error);
      this.o.log.warn({ err, size: good.length }, 'batch settlement failed; settling one by one');
      for (const g of good) {
        try {
          await this.apply([g.ev]);
          ch.ack(g.msg);
        } catch (one) {
          await this.retryLater(ch, pub, g.msg, one as Error);
        }
      }
    }
  }

  private async apply(events: SettlementEvent[]): Promise<SettlementResult[]> {
    const results = await settleBatch(this.o.pool, events);
    // Postgres has committed; now the live state follows. A crash here is
    // repaired by redelivery: the stored status is applied again, once.
    const outcomes = await Promise.all(
      results.map((r) => settlePurchase(this.o.redis, r.saleId, r.purchaseId, r.status, r.reason, r.settledAt)),
    );
    outcomes.forEach((o, i) => {
      if (o.code < 0) this.o.log.error({ purchaseId: results[i]!.purchaseId }, 'settled purchase unknown to Redis');
    });
    this.settled += results.length;
    return results;
  }

  private async retryLater(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage, err: Error): Promise<void> {
    const attempt = Number(msg.properties.headers?.[ATTEMPT_HEADER] ?? 0);
    const delay = this.o.topology.retryDelaysMs[attempt];
    if (delay === undefined) return this.deadLetter(ch, pub, msg, err);
    this.o.log.warn({ err, messageId: msg.properties.messageId, attempt: attempt + 1, delayMs: delay }, 'settlement failed; retrying later');
    await this.republish(pub, retryQueue(this.o.topology.orders, delay), msg, { [ATTEMPT_HEADER]: attempt + 1, 'x-stampede-last-error': err.message });
    ch.ack(msg);
  }

  private async deadLetter(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage, err: Error): Promise<void> {
    this.o.log.error({ err, messageId: msg.properties.messageId }, 'message dead-lettered');
    await this.republish(pub, deadLetterQueue(this.o.topology.orders), msg, { 'x-stampede-last-error': err.message, 'x-stampede-dead-lettered-at': new Date().toISOString() });
    ch.ack(msg);
  }

  /** Publishes a copy straight to a queue and waits for the broker's confirm. */
  private republish(pub: ConfirmChannel, queue: string, msg: ConsumeMessage, headers: Record<string, unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      pub.sendToQueue(queue, msg.content, { ...msg.properties, headers: { ...msg.properties.headers, ...headers }, persistent: true }, (err: unknown) =>
        err ? reject(err) : resolve(),
      );
    });
  }
}
