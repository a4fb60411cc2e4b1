/**
 * The relay: outbox streams -> RabbitMQ. Reads every sale's outbox with the
 * `relay` consumer group, publishes the entries as CloudEvents on a confirm
 * channel with `mandatory`, and XACKs only what the broker confirmed and
 * routed. A run of entries of one outbox with one routing key travels as one
 * message, a CloudEvents JSON batch (`application/cloudevents-batch+json`,
 * an array of up to `eventsPerMessage` events, in outbox order): the broker's
 * cost is per message (a quorum-queue write, a confirm, a delivery, an ack),
 * and it was the largest part of settling an order. A run of one is sent as
 * a single CloudEvent. Entries left pending by a dead relay are reclaimed with XAUTOCLAIM;
 * only acknowledged entries are ever trimmed. RabbitMQ being down leaves the
 * entries in Redis, where they wait. The registry is one set; the streams
 * are on every master of a cluster, each read, claimed and acknowledged on
 * its own (client.ts `batch`).
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { OUTBOX_REGISTRY, RELAY_GROUP } from './outbox.js';
import { trimOutbox } from './outbox.js';
import { batch } from '../redis/client.js';
import { keepConnected, sleep, type ConfirmChannel, type Connection } from './amqp.js';
import { publisherOf, type ConfirmingPublisher } from './publisher.js';
import { cloudEventJson, outboxEntryOf, type OutboxEntry } from './events.js';
import { assertTopology, routingKeyOf, type Topology } from './topology.js';

export interface RelayOptions {
  redis: Redis;
  amqpUrl: string;
  log: Logger;
  batch: number;
  claimIdleMs: number;
  /** Most events in one message (1 sends every event on its own). */
  eventsPerMessage: number;
  topology: Topology;
  consumerName?: string;
}

type StreamReply = [string, [string, string[]][]][] | null;

export class Relay {
  private stopping = false;
  private running?: Promise<void>;
  private conn?: Connection;
  readonly consumer: string;
  /** Entries published and acknowledged since start (for tests and ops). */
  relayed = 0;

  constructor(private readonly options: RelayOptions) {
    this.consumer = options.consumerName ?? `${hostname()}-${process.pid}`;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    await this.conn?.close().catch(() => {});
  }

  private run(): Promise<void> {
    return keepConnected({
      url: this.options.amqpUrl,
      name: `relay ${this.consumer}`,
      stopping: () => this.stopping,
      onConnection: (conn) => (this.conn = conn),
      onLost: (err) => this.options.log.error({ err }, 'relay lost the broker; outbox entries wait in Redis'),
      session: async (s) => {
        const ch = await s.conn.createConfirmChannel();
        await assertTopology(ch, this.options.topology);
        s.established();
        this.options.log.info({ consumer: this.consumer }, 'relay connected to broker');
        await this.pump(ch);
      },
    });
  }

  private async pump(ch: ConfirmChannel): Promise<void> {
    let closed: Error | undefined;
    ch.on('close', () => (closed ??= new Error('channel closed')));
    ch.on('error', (err: Error) => (closed = err));
    const publisher = publisherOf(ch);

    let streams: string[] = [];
    let streamsAt = 0;
    let claimAt = 0;
    // After (re)connecting, first re-publish what this consumer read but never acknowledged.
    let readOwnPending = true;
    let idleMs = 0;

    while (!this.stopping) {
      if (closed) throw closed;
      const now = Date.now();
      if (now - streamsAt > 1_000) {
        streams = await this.options.redis.smembers(OUTBOX_REGISTRY);
        streamsAt = now;
      }
      let entries: OutboxEntry[] = [];
      if (streams.length > 0) {
        entries = await this.read(streams, readOwnPending ? '0' : '>');
        if (readOwnPending && entries.length === 0) readOwnPending = false;
        if (now - claimAt > Math.min(5_000, this.options.claimIdleMs)) {
          claimAt = now;
          entries = entries.concat(await this.reclaim(streams, entries));
        }
      }
      if (entries.length === 0) {
        idleMs = Math.min(20, idleMs + 1);
        await sleep(idleMs);
        continue;
      }
      idleMs = 0;
      const acked = await this.publish(publisher, entries);
      if (acked.length < entries.length) readOwnPending = true;
      await this.acknowledge(acked);
    }
  }

  private async read(streams: string[], id: '0' | '>'): Promise<OutboxEntry[]> {
    // One XREADGROUP per stream (never several slots in one command), batched (each on its own master on a cluster).
    const replies = await batch(this.options.redis, streams, (p, s) => p.xreadgroup('GROUP', RELAY_GROUP, this.consumer, 'COUNT', this.options.batch, 'STREAMS', s, id));
    const out: OutboxEntry[] = [];
    replies.forEach(([err, reply], i) => {
      if (err) {
        if (/NOGROUP/.test(String(err))) void this.ensureGroup(streams[i]!);
        else this.options.log.error({ err, stream: streams[i] }, 'outbox read failed');
        return;
      }
      for (const [stream, items] of (reply as StreamReply) ?? []) {
        for (const [streamId, fields] of items) {
          // A pending entry that was trimmed meanwhile comes back with no fields.
          if (fields) out.push(outboxEntryOf(stream, streamId, fields));
        }
      }
    });
    return out;
  }

  private async ensureGroup(stream: string): Promise<void> {
    await this.options.redis.xgroup('CREATE', stream, RELAY_GROUP, '0', 'MKSTREAM').catch(() => {});
  }

  /** Where each stream's XAUTOCLAIM scan goes on from, so every pending entry is reached in turn. */
  private claimCursors = new Map<string, string>();

  /**
   * Entries idle past the claim period, of any consumer. This relay's own
   * entries read in this very round are skipped: on a busy process more than
   * the claim period can pass between the read and the claim, and they would
   * be published twice.
   */
  private async reclaim(streams: string[], readNow: OutboxEntry[]): Promise<OutboxEntry[]> {
    const inHand = new Set(readNow.map((e) => `${e.stream} ${e.streamId}`));
    const replies = await batch(this.options.redis, streams, (p, s) =>
      p.xautoclaim(s, RELAY_GROUP, this.consumer, this.options.claimIdleMs, this.claimCursors.get(s) ?? '0-0', 'COUNT', this.options.batch));
    const out: OutboxEntry[] = [];
    replies.forEach(([err, reply], i) => {
      if (err) return;
      const [cursor, items] = reply as [string, [string, string[] | null][]];
      this.claimCursors.set(streams[i]!, cursor);
      for (const [streamId, fields] of items) {
        if (fields && !inHand.has(`${streams[i]} ${streamId}`)) out.push(outboxEntryOf(streams[i]!, streamId, fields));
      }
    });
    if (out.length > 0) this.options.log.warn({ count: out.length }, 'relay reclaimed outbox entries of a stalled relay');
    return out;
  }

  /** Consecutive entries of one outbox with one routing key, at most eventsPerMessage at a time. */
  private runsOf(entries: OutboxEntry[]): OutboxEntry[][] {
    const runs: OutboxEntry[][] = [];
    let run: OutboxEntry[] = [];
    for (const e of entries) {
      const last = run[run.length - 1];
      if (last && (last.stream !== e.stream || last.type !== e.type || run.length >= this.options.eventsPerMessage)) {
        runs.push(run);
        run = [];
      }
      run.push(e);
    }
    if (run.length > 0) runs.push(run);
    return runs;
  }

  /** Publishes entries; resolves with those the broker confirmed and routed. */
  private async publish(publisher: ConfirmingPublisher, entries: OutboxEntry[]): Promise<OutboxEntry[]> {
    const runs = this.runsOf(entries);
    const results = await Promise.all(
      runs.map((run) => {
        const first = run[0]!;
        const single = run.length === 1;
        const events = run.map((e) => cloudEventJson(e, `stampede:${e.stream}`));
        // A batch is named by its first event and its size; its events keep their own ids inside.
        const messageId = single ? first.id : `${first.id}+${run.length - 1}`;
        return publisher
          .publish(this.options.topology.exchange, routingKeyOf(first.type), Buffer.from(single ? events[0]! : '[' + events.join(',') + ']'), {
            messageId,
            type: first.type,
            contentType: single ? 'application/cloudevents+json' : 'application/cloudevents-batch+json',
            timestamp: Math.floor(first.time / 1000),
          })
          .then(
            () => true,
            (err: unknown) => {
              this.options.log.error({ err, id: messageId, type: first.type, events: run.length }, 'broker did not take outbox entries; they stay pending');
              return false;
            },
          );
      }),
    );
    return runs.filter((_, i) => results[i]).flat();
  }

  private async acknowledge(entries: OutboxEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const byStream = new Map<string, string[]>();
    for (const e of entries) {
      const ids = byStream.get(e.stream) ?? [];
      ids.push(e.streamId);
      byStream.set(e.stream, ids);
    }
    await batch(this.options.redis, [...byStream], (p, [stream, ids]) => p.xack(stream, RELAY_GROUP, ...ids));
    this.relayed += entries.length;
    await Promise.all([...byStream.keys()].map((s) => trimOutbox(this.options.redis, s)));
  }
}
