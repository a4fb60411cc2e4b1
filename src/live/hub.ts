/**
 * The live endpoint, `ws /v1/live`: clients subscribe to `auction/<id>` and
 * `sale/<id>` topics and receive updates pushed by every api node.
 *
 * Auction updates come from Redis pub/sub: the auction scripts PUBLISH
 * `<topic> <json>` on LIVE_CHANNEL in the same call that changes the auction,
 * every api node receives it on one dedicated subscriber connection, and
 * forwards the JSON unparsed to its local subscribers with uWS's own topic
 * fan-out (`app.publish`). Updates published while a node's subscriber
 * connection is down are lost to it; when it is back, the node reads every
 * auction its clients watch and pushes its current state.
 *
 * Sale stock ticks are polled, not published: the purchase path stays
 * untouched. Every tick, a node reads the live counters of the sales that
 * have a local subscriber (one auto-pipelined round trip) and publishes a
 * tick only for those that changed.
 *
 * A buyer's notifications go to their `user/<buyer id>` topic, which only a
 * connection that authenticated as that buyer (an `auth` frame with their
 * token) may hold. The api node hands each new notification to `pushToBuyer`
 * (it reads them from the notifications channel); a node none of whose
 * connections holds that buyer's topic does nothing more with it.
 *
 * The frames are in protocol.ts. A client's operations are answered in the
 * order it sent them.
 */
import type { Redis } from 'ioredis';
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t, WebSocket } from 'uWebSockets.js';
import type { Logger } from '../platform/log.js';
import { channelSubscriber, type RedisTarget } from '../platform/redis/client.js';
import { LIVE_CHANNEL } from './keys.js';
import { readLiveSale, type LiveSale } from '../sales/scripts.js';
import { uWS } from '../platform/http/uws.js';
import { AppError, problemOf } from '../platform/errors.js';
import { errorFrame, LIVE_LIMITS, parseOperation, TOPIC, type AuthOperation, type LiveLimits, type Operation, type TopicOperation } from './protocol.js';

const SHUTTING_DOWN = JSON.stringify(problemOf(new AppError('UNAVAILABLE', 'this node is shutting down; reconnect to another')));

export interface LiveHubOptions {
  app: TemplatedApp;
  /** The api's command connection (auto-pipelined): snapshots and ticks read through it. */
  redis: Redis;
  /** The hub opens its own subscriber connection to this Redis. */
  redisTarget: RedisTarget;
  log: Logger;
  tickMs: number;
  /** The current state of an auction; undefined (or no function) answers `snapshot: null`. */
  auctionSnapshot?: (auctionId: string) => Promise<object | undefined>;
  /** The buyer a token names, or an UNAUTHORIZED AppError; without it every `auth` is refused. */
  authenticate?: (token: string) => string | Promise<string>;
  limits?: Partial<LiveLimits>;
  path?: string;
}

interface Connection {
  topics: Set<string>;
  /** Operations not yet answered. */
  pending: number;
  /** The tail of this connection's operations: each runs after the one before, so answers keep the client's order. */
  chain: Promise<void>;
  closed: boolean;
  /** The buyer this connection authenticated as, once it has. */
  buyerId?: string;
}

type Socket = WebSocket<Connection>;

const SHUTDOWN_CODE = 1001; // "going away"

export class LiveHub {
  private readonly limits: LiveLimits;
  private readonly sockets = new Set<Socket>();
  /** sale id -> local subscribers; only these sales are polled. */
  private readonly saleSubscribers = new Map<string, number>();
  /** auction id -> local subscribers; these are brought up to date after a lost subscriber connection. */
  private readonly auctionSubscribers = new Map<string, number>();
  /** While a resync runs: the auction topics an update was forwarded for since it began (they are current). */
  private forwardedDuringResync?: Set<string>;
  /**
   * sale id -> the last tick published (its JSON), so unchanged counters
   * publish nothing. Holds only while every subscriber of the sale has seen
   * that state last; UNKNOWN otherwise.
   */
  private readonly lastTick = new Map<string, string>();
  private readonly subscriber: ReturnType<typeof channelSubscriber>;
  private readonly timer: NodeJS.Timeout;
  private ticking = false;
  private tickFailing = false;
  private stopping = false;
  private subscriptionCount = 0;
  /** Completed stock polls; tests wait on it instead of the clock. */
  ticks = 0;
  /** Updates forwarded from Redis (for operators). */
  forwarded = 0;
  /** Auction states pushed after the subscriber connection came back (for operators and tests). */
  resynced = 0;
  /** Notifications pushed to a user topic held on this node (for operators and tests). */
  pushed = 0;
  /** Answers dropped because their reader fell behind by more than maxBackpressure (uWS closed it). */
  slowReaders = 0;
  /** Connections closed abnormally (1006: no close frame; among them the readers uWS closed for backpressure while publishing). */
  closedAbnormally = 0;

  constructor(private readonly options: LiveHubOptions) {
    this.limits = { ...LIVE_LIMITS, ...options.limits };
    options.app.ws<Connection>(options.path ?? '/v1/live', {
      compression: uWS.DISABLED,
      maxPayloadLength: this.limits.maxPayloadLength,
      maxBackpressure: this.limits.maxBackpressure,
      // Typed as a number by the bindings, read as a boolean.
      closeOnBackpressureLimit: 1,
      idleTimeout: this.limits.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      maxLifetime: 0,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => {
        this.sockets.add(ws);
      },
      message: (ws, message, isBinary) => this.onMessage(ws, message, isBinary),
      close: (ws, code) => this.onClose(ws, code),
    });

    // What was published while the connection was down is lost: once
    // subscribed again, every auction watched here gets its current state.
    this.subscriber = channelSubscriber(options.redisTarget, 'stampede-api-live', LIVE_CHANNEL, (message) => this.forward(message), () => void this.resync());
    this.timer = setInterval(() => void this.tick(), options.tickMs);
    this.timer.unref();
  }

  /** Resolves once the subscriber listens on LIVE_CHANNEL. */
  async start(): Promise<void> {
    await this.subscriber.subscribe();
  }

  /**
   * After the subscriber connection came back: subscribes (ioredis does it
   * too, after 'ready'; this waits for it to be in force), then reads each
   * locally watched auction and pushes its state as an update. An auction
   * whose update arrived meanwhile is skipped: that update is newer than the
   * state read, or as new.
   */
  private async resync(): Promise<void> {
    if (this.stopping) return;
    const forwarded = (this.forwardedDuringResync = new Set());
    try {
      await this.subscriber.subscribe();
      const ids = [...this.auctionSubscribers.keys()];
      this.options.log.warn({ auctions: ids.length }, 'live: Redis subscriber reconnected; pushing the current state of the auctions watched here');
      if (!this.options.auctionSnapshot || ids.length === 0) return;
      const read = this.options.auctionSnapshot;
      await Promise.all(ids.map(async (id) => {
        const topic = `auction/${id}`;
        let snapshot: object | undefined;
        try {
          snapshot = await read(id);
        } catch (err) {
          this.options.log.error({ err, auctionId: id }, 'live: could not read an auction after the reconnect; its watchers wait for its next update');
          return;
        }
        if (snapshot === undefined || forwarded.has(topic) || this.stopping || this.options.app.numSubscribers(topic) === 0) return;
        this.resynced++;
        this.options.app.publish(topic, `{"topic":"${topic}","data":${JSON.stringify(snapshot)}}`);
      }));
    } catch (err) {
      this.options.log.error({ err }, 'live: resync after the reconnect failed; watchers wait for the next update');
    } finally {
      if (this.forwardedDuringResync === forwarded) this.forwardedDuringResync = undefined;
    }
  }

  /** Open WebSocket connections on this node. */
  get connections(): number {
    return this.sockets.size;
  }

  /** Topic subscriptions held by this node's connections. */
  get subscriptions(): number {
    return this.subscriptionCount;
  }

  /**
   * What the hub holds per connection and per watched topic: each count
   * falls back to zero once the clients behind it have left (memory bounded
   * by the connections open, not by the connections ever seen).
   */
  held(): { sockets: number; subscriptions: number; watchedSales: number; watchedAuctions: number; lastTicks: number } {
    return {
      sockets: this.sockets.size, subscriptions: this.subscriptionCount, watchedSales: this.saleSubscribers.size,
      watchedAuctions: this.auctionSubscribers.size, lastTicks: this.lastTick.size,
    };
  }

  /** Closes every connection with 1001 (going away) and the Redis subscriber. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.timer);
    const open = this.sockets.size;
    for (const ws of [...this.sockets]) ws.end(SHUTDOWN_CODE, 'server shutting down');
    await this.subscriber.quit();
    this.options.log.info({ closed: open }, 'live: stopped');
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    if (this.stopping) {
      // A refusal like any other route's: problem+json, as the OpenAPI document says.
      res.cork(() => res.writeStatus('503 Service Unavailable').writeHeader('content-type', 'application/problem+json').writeHeader('retry-after', '1').end(SHUTTING_DOWN));
      return;
    }
    const conn: Connection = { topics: new Set(), pending: 0, chain: Promise.resolve(), closed: false };
    res.upgrade(conn, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  }

  private onClose(ws: Socket, code: number): void {
    this.sockets.delete(ws);
    const conn = ws.getUserData();
    conn.closed = true;
    for (const topic of conn.topics) this.released(topic);
    conn.topics.clear();
    if (code === 1006) this.closedAbnormally++;
    if (code !== 1000 && code !== SHUTDOWN_CODE && code !== 1005) this.options.log.debug({ code }, 'live: connection closed');
  }

  private onMessage(ws: Socket, message: ArrayBuffer, isBinary: boolean): void {
    const conn = ws.getUserData();
    if (conn.pending >= this.limits.maxPendingOps) {
      // The one answer that jumps the queue: queueing it would defeat the limit.
      return this.send(ws, errorFrame('RATE_LIMITED', `at most ${this.limits.maxPendingOps} operations may await an answer`));
    }
    let op: Operation | AppError;
    if (isBinary) {
      op = new AppError('VALIDATION_FAILED', 'binary frames are not accepted; send JSON text');
    } else if (message.byteLength > this.limits.maxFrameBytes) {
      op = new AppError('PAYLOAD_TOO_LARGE', `frames are limited to ${this.limits.maxFrameBytes} bytes`);
    } else {
      // The ArrayBuffer is only valid during this callback: decode (copy) it now.
      op = parseOperation(Buffer.from(message).toString('utf8'), this.limits);
    }
    conn.pending++;
    // Even refusals wait their turn, so answers keep the order of the frames.
    conn.chain = conn.chain
      .then(() => (op instanceof AppError ? this.refuse(ws, conn, op) : this.run(ws, conn, op)))
      .catch((err: unknown) => this.options.log.error({ err }, 'live: operation failed'))
      .finally(() => {
        conn.pending--;
      });
  }

  private refuse(ws: Socket, conn: Connection, err: AppError): void {
    if (!conn.closed) this.send(ws, errorFrame(err.code, err.message));
  }

  private async run(ws: Socket, conn: Connection, op: Operation): Promise<void> {
    if (conn.closed) return;
    if (op.op === 'auth') return this.authenticate(ws, conn, op);
    if (op.op === 'unsubscribe') {
      if (conn.topics.delete(op.topic)) {
        ws.unsubscribe(op.topic);
        this.released(op.topic);
      }
      this.send(ws, `{"op":"unsubscribed","topic":"${op.topic}"}`);
      return;
    }
    if (op.kind === 'user' && op.id !== conn.buyerId) {
      this.send(ws, conn.buyerId === undefined
        ? errorFrame('UNAUTHORIZED', 'send {"op":"auth","token":…} with your buyer token before subscribing to your user topic', op.topic)
        : errorFrame('FORBIDDEN', 'a connection may only hold the user topic of the buyer it authenticated as', op.topic));
      return;
    }
    const already = conn.topics.has(op.topic);
    if (!already && conn.topics.size >= this.limits.maxTopics) {
      this.send(ws, errorFrame('TOO_MANY_SUBSCRIPTIONS', `at most ${this.limits.maxTopics} topics per connection`, op.topic));
      return;
    }
    // Subscribe before reading the snapshot, so no update falls between the two.
    if (!already) {
      conn.topics.add(op.topic);
      ws.subscribe(op.topic);
      this.acquired(op.topic);
    }
    let snapshot: object | undefined;
    try {
      snapshot = await this.snapshot(op);
    } catch (err) {
      if (!conn.closed && !already && conn.topics.delete(op.topic)) {
        ws.unsubscribe(op.topic);
        this.released(op.topic);
      }
      const e = err instanceof AppError ? err : undefined;
      if (!e) this.options.log.error({ err, topic: op.topic }, 'live: snapshot failed');
      if (!conn.closed) {
        this.send(ws, e ? errorFrame(e.code, e.message, op.topic) : errorFrame('UNAVAILABLE', 'the current state could not be read; retry shortly', op.topic));
      }
      return;
    }
    if (conn.closed) return;
    this.send(ws, `{"op":"subscribed","topic":"${op.topic}","snapshot":${snapshot === undefined ? 'null' : JSON.stringify(snapshot)}}`);
  }

  /**
   * Verifies the token and records its buyer on the connection. A connection
   * is one buyer's: a token of another buyer is refused (a token renewed for
   * the same buyer is accepted).
   */
  private async authenticate(ws: Socket, conn: Connection, op: AuthOperation): Promise<void> {
    let buyerId: string;
    try {
      if (!this.options.authenticate) throw new AppError('UNAUTHORIZED', 'this node accepts no tokens');
      buyerId = await this.options.authenticate(op.token);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (!conn.closed) this.send(ws, errorFrame(err.code, err.message));
      return;
    }
    if (conn.closed) return;
    if (conn.buyerId !== undefined && conn.buyerId !== buyerId) {
      return this.send(ws, errorFrame('FORBIDDEN', 'this connection is authenticated as another buyer; open another connection'));
    }
    conn.buyerId = buyerId;
    this.send(ws, '{"op":"authenticated"}');
  }

  /**
   * One new notification of a buyer (its item's JSON, as the inbox shows it),
   * to the connections of this node holding their user topic. False when
   * none does.
   */
  pushToBuyer(buyerId: string, itemJson: string): boolean {
    const topic = `user/${buyerId}`;
    if (this.stopping || this.options.app.numSubscribers(topic) === 0) return false;
    this.pushed++;
    this.options.app.publish(topic, `{"topic":"${topic}","data":${itemJson}}`);
    return true;
  }

  private async snapshot(op: TopicOperation): Promise<object | undefined> {
    if (op.kind === 'user') return undefined;
    if (op.kind === 'sale') {
      const live = await readLiveSale(this.options.redis, op.id);
      if (!live) throw new AppError('NOT_FOUND', 'no such sale');
      const data = tickData(live);
      const json = JSON.stringify(data);
      const last = this.lastTick.get(op.id);
      // The first subscriber's snapshot is the baseline: the next tick publishes only a change from it.
      // A later snapshot that differs means subscribers now hold different states: the next tick resends.
      if (last === undefined) {
        if (this.saleSubscribers.has(op.id)) this.lastTick.set(op.id, json);
      } else if (last !== json) {
        this.lastTick.set(op.id, UNKNOWN);
      }
      return data;
    }
    return this.options.auctionSnapshot ? await this.options.auctionSnapshot(op.id) : undefined;
  }

  /** One message from LIVE_CHANNEL: `<topic> <json>`, forwarded without parsing the JSON. */
  private forward(message: string): void {
    const space = message.indexOf(' ');
    const topic = space > 0 ? message.slice(0, space) : '';
    if (!TOPIC.test(topic) || message.charCodeAt(space + 1) !== 0x7b /* { */ || message.charCodeAt(message.length - 1) !== 0x7d /* } */) {
      this.options.log.warn({ message: message.slice(0, 200) }, 'live: malformed message on the live channel, dropped');
      return;
    }
    this.forwardedDuringResync?.add(topic);
    if (this.options.app.numSubscribers(topic) === 0) return;
    this.forwarded++;
    this.options.app.publish(topic, `{"topic":"${topic}","data":${message.slice(space + 1)}}`);
  }

  /** Polls the sales with local subscribers and publishes those whose counters changed. */
  private async tick(): Promise<void> {
    if (this.ticking || this.stopping) return;
    this.ticking = true;
    try {
      const saleIds = [...this.saleSubscribers.keys()];
      if (saleIds.length === 0) return;
      // Issued together on the auto-pipelined connection: one round trip for all of them.
      const lives = await Promise.all(saleIds.map((id) => readLiveSale(this.options.redis, id)));
      if (this.stopping) return;
      saleIds.forEach((id, i) => {
        const live = lives[i];
        if (!live || !this.saleSubscribers.has(id)) return;
        const data = JSON.stringify(tickData(live));
        if (this.lastTick.get(id) === data) return;
        this.lastTick.set(id, data);
        this.options.app.publish(`sale/${id}`, `{"topic":"sale/${id}","data":${data}}`);
      });
      if (this.tickFailing) this.options.log.info('live: stock ticks recovered');
      this.tickFailing = false;
    } catch (err) {
      // Once per outage, not every tick.
      if (!this.tickFailing) this.options.log.error({ err }, 'live: stock tick failed; retrying every tick');
      this.tickFailing = true;
    } finally {
      this.ticks++;
      this.ticking = false;
    }
  }

  /** The subscriber counts a topic belongs to (sales are polled, auctions resynced), and its id; none for user topics. */
  private countsOf(topic: string): [Map<string, number>, string] | undefined {
    if (topic.startsWith('sale/')) return [this.saleSubscribers, topic.slice(5)];
    if (topic.startsWith('auction/')) return [this.auctionSubscribers, topic.slice(8)];
    return undefined;
  }

  private acquired(topic: string): void {
    this.subscriptionCount++;
    const of = this.countsOf(topic);
    if (!of) return;
    const [counts, id] = of;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }

  private released(topic: string): void {
    this.subscriptionCount--;
    const of = this.countsOf(topic);
    if (!of) return;
    const [counts, id] = of;
    const sale = counts === this.saleSubscribers;
    const n = (counts.get(id) ?? 1) - 1;
    if (n > 0) {
      counts.set(id, n);
    } else {
      counts.delete(id);
      if (sale) this.lastTick.delete(id);
    }
  }

  private send(ws: Socket, frame: string): void {
    let status = 1;
    // Corked: most answers are written after an await, outside any uWS callback.
    ws.cork(() => {
      status = ws.send(frame, false);
    });
    // 2 = dropped: closeOnBackpressureLimit has already closed the slow reader.
    if (status === 2) this.slowReaders++;
    if (status === 2) this.options.log.warn({ limitBytes: this.limits.maxBackpressure }, 'live: slow reader disconnected');
  }
}

/** A last tick no state equals: the next poll publishes whatever it reads. */
const UNKNOWN = '';

function tickData(live: LiveSale) {
  return { available: live.available, reserved: live.reserved, sold: live.sold, stock: live.stock, status: live.status };
}
