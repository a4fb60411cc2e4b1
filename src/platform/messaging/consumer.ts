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
import { keepConnected, type Channel, type ConfirmChannel, type Connection, type ConsumeMessage } from './amqp.js';
import { assertTopology, deadLetterQueue, retryQueue, type Concern, type Topology } from './topology.js';
import { publisherOf } from './publisher.js';

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
  /** What its messages carry, for refusals: 'a purchase event'. */
  what: string;
  concern: Concern;
}

export const ATTEMPT_HEADER = 'x-stampede-attempt';

/**
 * A failure no retry can help (the event names a sale whose terms it
 * contradicts, say): the message goes to the dead-letter queue at once, with
 * this error's message as its reason, instead of through every delay tier.
 */
export class PermanentError extends Error {}

/** A message that cannot even be read as the event it claims to be: permanent. */
export class PoisonMessageError extends PermanentError {}

/** A decoded JSON value that is an object (a CloudEvent envelope, before its fields are checked). */
export type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The envelopes a message carries: one CloudEvent, or a CloudEvents JSON
 * batch (an array of them, which the relay sends for a run of events of one
 * outbox), element by element as they came: one that is not an object is
 * dead-lettered on its own. Throws PoisonMessageError when the body is not
 * JSON, or neither an object nor an array.
 */
export function envelopesOf(msg: ConsumeMessage, what: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(msg.content.toString('utf8'));
  } catch {
    throw new PoisonMessageError('message is not JSON');
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) throw new PoisonMessageError('message is an empty batch');
    return parsed;
  }
  if (isObject(parsed)) return [parsed];
  throw new PoisonMessageError(`message is not ${what}`);
}

/** A message as it arrived: its events, and what in it can never be settled. */
interface Parsed<E> {
  msg: ConsumeMessage;
  events: E[];
  /** The whole message is unreadable (not JSON, not an event, or no event in it can be settled). */
  unreadable?: Error;
  /** Events of a batch that can never be settled (the others are). */
  poison: { envelope: unknown; err: Error }[];
}

export abstract class BatchConsumer<E> {
  private stopping = false;
  private running?: Promise<void>;
  private conn?: Connection;
  private ch?: Channel;
  private pub?: ConfirmChannel;
  private consumerTag?: string;
  private buffer: Parsed<E>[] = [];
  /** Lanes settling now (at most `concurrency`). */
  private readonly lanes = new Set<Promise<void>>();
  /** Lanes started and still waiting for the rest of a burst (0 or 1). */
  private starting = 0;
  /** Events settled (first time or again) since start, for tests and ops. */
  settled = 0;
  /** Messages sent to a retry tier, and messages or events sent to the dead-letter queue, since start. */
  retried = 0;
  deadLettered = 0;

  constructor(private readonly settings: ConsumerSettings) {}

  /** Checks one envelope; throws PoisonMessageError for an event that can never be settled. */
  protected abstract parse(envelope: JsonObject): E;

  /**
   * Settles the events; may publish on `pub` (a confirm channel) and must
   * wait for the broker's confirms before resolving. Throwing retries them.
   */
  protected abstract settle(events: E[], pub: ConfirmChannel): Promise<void>;

  /**
   * Called with a message's events once it is in the dead-letter queue, before
   * it is acked: a worker whose events must not wait there for ever (an
   * accepted purchase) settles what it can of them. A failure is logged.
   */
  protected async onDeadLettered(_events: E[], _pub: ConfirmChannel): Promise<void> {}

  /** Called once a (re)connected session consumes; may publish on `pub` (and wait for its confirms). A failure is logged; the session goes on. */
  protected async consuming(_pub: ConfirmChannel): Promise<void> {}

  /** Awaited by a lane before it takes each batch (a worker that gives way to another waits here; what arrives meanwhile joins the batch). */
  protected async ready(_pub: ConfirmChannel): Promise<void> {}

  /** Whether stop() was called. */
  protected get isStopping(): boolean {
    return this.stopping;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Stops consuming, finishes the batch in flight; unacked messages go back to the queue. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.ch && this.consumerTag) await this.ch.cancel(this.consumerTag).catch(() => {});
    while (this.lanes.size > 0) await Promise.all(this.lanes);
    await this.conn?.close().catch(() => {});
    await this.running;
  }

  private run(): Promise<void> {
    const { name, concern } = this.settings;
    return keepConnected({
      url: this.settings.amqpUrl,
      name: `${name} ${process.pid}`,
      stopping: () => this.stopping,
      onConnection: (conn) => {
        this.conn = conn;
        if (!conn) this.ch = this.pub = undefined;
      },
      onLost: (err) => this.settings.log.error({ err }, `${name} lost the broker; reconnecting`),
      session: async (s) => {
        const ch = await s.conn.createChannel();
        const pub = await s.conn.createConfirmChannel();
        await assertTopology(ch, this.settings.topology);
        await ch.prefetch(this.settings.prefetch);
        this.buffer = [];
        this.ch = ch;
        this.pub = pub;
        const { consumerTag } = await ch.consume(concern.queue, (msg) => msg && this.enqueue(ch, pub, msg), { noAck: false });
        this.consumerTag = consumerTag;
        s.established();
        this.settings.log.info({ queue: concern.queue }, `${name} consuming`);
        await this.consuming(pub).catch((err: unknown) => this.settings.log.error({ err }, `${name}: its start-up work failed`));
        await s.closed;
      },
    });
  }

  private enqueue(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage): void {
    this.buffer.push(this.parseMessage(msg));
    this.startLanes(ch, pub);
  }

  /**
   * Keeps up to `concurrency` lanes busy while messages wait. A lane that
   * finds the buffer empty ends; the next delivery starts one again, so a
   * short gap in deliveries never leaves the worker settling on one lane.
   * One lane at a time waits for the rest of a burst; a burst is not split
   * into a lane per message. Lanes belong to one channel: after a reconnect
   * the buffer holds the new channel's messages, which only the new
   * channel's lanes may take (and ack).
   */
  private startLanes(ch: Channel, pub: ConfirmChannel): void {
    while (!this.stopping && this.ch === ch && this.starting === 0 && this.lanes.size < this.settings.concurrency && this.buffer.length > 0) {
      const lane: Promise<void> = this.lane(ch, pub).finally(() => {
        this.lanes.delete(lane);
        if (this.buffer.length > 0 && this.ch && this.pub) this.startLanes(this.ch, this.pub);
      });
      this.lanes.add(lane);
    }
  }

  /** One transaction stream: takes batches off the buffer until it is empty (or its channel is gone). */
  private async lane(ch: Channel, pub: ConfirmChannel): Promise<void> {
    // Let the rest of a burst arrive, so it is settled in one transaction.
    this.starting++;
    await new Promise((r) => setImmediate(r));
    this.starting--;
    try {
      while (this.ch === ch && this.buffer.length > 0) {
        await this.ready(pub);
        if (this.ch !== ch || this.buffer.length === 0) break;
        const batch = this.takeBatch();
        // What is left waits for no one: another lane may take it now.
        this.startLanes(ch, pub);
        await this.settleBatch(ch, pub, batch);
      }
    } catch (err) {
      // The channel or broker went away mid-batch: unacked messages are
      // redelivered. The buffer is dropped only if it is still this channel's.
      this.settings.log.error({ err }, `${this.settings.name} batch interrupted; its messages will be redelivered`);
      if (this.ch === ch) this.buffer = [];
    }
  }

  /** Messages off the buffer until they carry `batch` events (at least one message). */
  private takeBatch(): Parsed<E>[] {
    let events = 0;
    let n = 0;
    while (n < this.buffer.length && (n === 0 || events + this.buffer[n]!.events.length <= this.settings.batch)) events += this.buffer[n++]!.events.length;
    return this.buffer.splice(0, n);
  }

  private async settleBatch(ch: Channel, pub: ConfirmChannel, batch: Parsed<E>[]): Promise<void> {
    const good: Parsed<E>[] = [];
    for (const p of batch) {
      if (p.unreadable) {
        await this.deadLetter(ch, pub, p.msg, p.unreadable);
        continue;
      }
      for (const bad of p.poison) await this.deadLetterOne(pub, p.msg, bad.envelope, bad.err);
      good.push(p);
    }
    if (good.length === 0) return;
    try {
      const events = good.flatMap((g) => g.events);
      await this.settle(events, pub);
      this.settled += events.length;
      for (const g of good) ch.ack(g.msg);
    } catch (err) {
      if (good.length === 1) return this.retryLater(ch, pub, good[0]!.msg, err as Error, good[0]!.events);
      this.settings.log.warn({ err, size: good.length }, 'batch settlement failed; settling message by message');
      for (const g of good) {
        try {
          await this.settle(g.events, pub);
          this.settled += g.events.length;
          ch.ack(g.msg);
        } catch (one) {
          await this.retryLater(ch, pub, g.msg, one as Error, g.events);
        }
      }
    }
  }

  /**
   * The events of one message. A message that is not JSON, or of which no
   * event can be settled, goes to the dead-letter queue whole; in a batch,
   * each poisonous event goes there on its own and the others are settled.
   */
  private parseMessage(msg: ConsumeMessage): Parsed<E> {
    let envelopes: unknown[];
    try {
      envelopes = envelopesOf(msg, this.settings.what);
    } catch (err) {
      return { msg, events: [], poison: [], unreadable: err as Error };
    }
    const events: E[] = [];
    const poison: { envelope: unknown; err: Error }[] = [];
    for (const envelope of envelopes) {
      try {
        if (!isObject(envelope)) throw new PoisonMessageError(`message is not ${this.settings.what}`);
        events.push(this.parse(envelope));
      } catch (err) {
        poison.push({ envelope, err: err as Error });
      }
    }
    if (events.length === 0) return { msg, events, poison: [], unreadable: poison[0]!.err };
    return { msg, events, poison };
  }

  private async retryLater(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage, err: Error, events: E[]): Promise<void> {
    if (err instanceof PermanentError) return this.deadLetter(ch, pub, msg, err, events);
    const attempt = Number(msg.properties.headers?.[ATTEMPT_HEADER] ?? 0);
    const delay = this.settings.topology.retryDelaysMs[attempt];
    if (delay === undefined) return this.deadLetter(ch, pub, msg, err, events);
    this.settings.log.warn({ err, messageId: msg.properties.messageId, attempt: attempt + 1, delayMs: delay }, 'settlement failed; retrying later');
    await republish(pub, retryQueue(this.settings.concern, delay), msg, { [ATTEMPT_HEADER]: attempt + 1, 'x-stampede-last-error': err.message });
    this.retried++;
    ch.ack(msg);
  }

  /** Dead-letters one event of a batch as a message of its own (the batch's other events are settled). */
  private async deadLetterOne(pub: ConfirmChannel, msg: ConsumeMessage, envelope: unknown, err: Error): Promise<void> {
    const id = envelope && typeof envelope === 'object' && typeof (envelope as JsonObject).id === 'string' ? ((envelope as JsonObject).id as string) : undefined;
    this.settings.log.error({ err, messageId: msg.properties.messageId, eventId: id }, 'event of a batch dead-lettered');
    await republish(pub, deadLetterQueue(this.settings.concern), msg, { 'x-stampede-last-error': err.message, 'x-stampede-dead-lettered-at': new Date().toISOString() },
      Buffer.from(JSON.stringify(envelope)), { messageId: id ?? msg.properties.messageId, contentType: 'application/cloudevents+json' });
    this.deadLettered++;
  }

  private async deadLetter(ch: Channel, pub: ConfirmChannel, msg: ConsumeMessage, err: Error, events: E[] = []): Promise<void> {
    this.settings.log.error({ err, messageId: msg.properties.messageId }, 'message dead-lettered');
    await republish(pub, deadLetterQueue(this.settings.concern), msg, { 'x-stampede-last-error': err.message, 'x-stampede-dead-lettered-at': new Date().toISOString() });
    this.deadLettered++;
    if (events.length > 0) {
      await this.onDeadLettered(events, pub).catch((hookErr: unknown) => this.settings.log.error({ err: hookErr, messageId: msg.properties.messageId }, `${this.settings.name}: settling a dead-lettered message's events failed`));
    }
    ch.ack(msg);
  }

  /** The queue it consumes. */
  get queue(): string {
    return this.settings.concern.queue;
  }
}

/** Sends a copy of a message straight to a queue, with more headers, and waits until the broker confirmed and routed it. */
function republish(pub: ConfirmChannel, queue: string, msg: ConsumeMessage, headers: Record<string, unknown>, content = msg.content, extra: Record<string, unknown> = {}): Promise<void> {
  const messageId = (extra.messageId as string | undefined) ?? msg.properties.messageId ?? `${queue}:${msg.fields.deliveryTag}`;
  return publisherOf(pub).sendToQueue(queue, content, { ...msg.properties, ...extra, messageId, headers: { ...msg.properties.headers, ...headers } });
}
