/**
 * The auctions worker: consumes `stampede.auctions` (see BatchConsumer:
 * manual acks, prefetch, batches, retry tiers, dead letters), logs every
 * event and settles closes and cancellations in one Postgres transaction
 * per batch (src/db/auction-settlement.ts), then publishes the
 * announcements (won, offer_failed, lost, released) with publisher
 * confirms. Only then are the messages acked.
 *
 * Announcements are at-least-once: a crash between the commit and the acks
 * redelivers the close, which settles nothing again but announces the same
 * events again, with the same message ids (`<auctionId>:won`,
 * `<auctionId>:lost:<buyerId>`, …), for the consumer to deduplicate.
 */
import type { Pool } from '../platform/db/pool.js';
import { settleAuctionEvents } from './settlement.js';
import type { ConfirmChannel } from '../platform/messaging/amqp.js';
import { publisherOf } from '../platform/messaging/publisher.js';
import { LOGGED_AUCTION_EVENT_TYPES, type AuctionLogEvent, type AuctionOffer, type LoggedAuctionEventType } from './events.js';
import { AUCTION_ID, BID_ID, USER_ID } from '../platform/ids.js';
import { MAX_OFFERS } from './scripts.js';
import { BatchConsumer, PoisonMessageError, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';

export interface AuctionsWorkerOptions extends WorkerSettings {
  pool: Pool;
}

type Fields = Record<string, unknown>;

/** Reads the fields of one event's data, each checked; the first bad one makes the message poison. */
class Reader {
  constructor(private readonly d: Fields, private readonly auctionId: string, private readonly where = 'data') {}

  private bad(key: string, what: string): PoisonMessageError {
    return new PoisonMessageError(`message is not an auction event: ${this.where}.${key} ${what}`);
  }

  whole(key: string, min = 0): number {
    const v = this.d[key];
    if (!Number.isSafeInteger(v) || (v as number) < min) throw this.bad(key, `must be an integer of at least ${min}`);
    return v as number;
  }

  wholeOrNull(key: string, min = 0): number | null {
    return this.d[key] === null ? null : this.whole(key, min);
  }

  flag(key: string): boolean {
    if (typeof this.d[key] !== 'boolean') throw this.bad(key, 'must be true or false');
    return this.d[key] as boolean;
  }

  buyer(key: string, orEmpty = false): string {
    const v = this.d[key];
    if (typeof v === 'string' && (USER_ID.test(v) || (orEmpty && v === ''))) return v;
    throw this.bad(key, 'must be a user id');
  }

  /** A bid id of this auction. */
  bid(key: string, orEmpty = false): string {
    const v = this.d[key];
    if (typeof v === 'string' && orEmpty && v === '') return v;
    const m = typeof v === 'string' ? BID_ID.exec(v) : null;
    if (!m || `auc_${m[1]}` !== this.auctionId) throw this.bad(key, 'must be a bid id of the auction');
    return v as string;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.d[key];
    if (typeof v !== 'string' || !values.includes(v as T)) throw this.bad(key, `must be one of ${values.join(', ')}`);
    return v as T;
  }

  buyers(key: string, max: number): string[] {
    const v = this.list(key, max);
    if (!v.every((b) => typeof b === 'string' && USER_ID.test(b))) throw this.bad(key, 'must be a list of user ids');
    return v as string[];
  }

  list(key: string, max: number): unknown[] {
    const v = this.d[key];
    if (!Array.isArray(v) || v.length > max) throw this.bad(key, `must be a list of at most ${max}`);
    return v;
  }

  object(value: unknown, where: string): Reader {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw this.bad(where, 'must be an object');
    return new Reader(value as Fields, this.auctionId, `${this.where}.${where}`);
  }
}

const TYPE = /^stampede\.auction\.([a-z_]+)\.v1$/;

/**
 * Reads one logged auction event strictly: the CloudEvent envelope, its id
 * `<auctionId>:<seq>`, and every field the settlement or a rebuild reads.
 * Money-bearing fields must be non-negative integers; anything else is
 * poison (dead-lettered at once, never retried).
 */
export function parseAuctionEvent(ev: JsonObject): AuctionLogEvent {
  const type = typeof ev.type === 'string' ? TYPE.exec(ev.type)?.[1] : undefined;
  if (!type || !(LOGGED_AUCTION_EVENT_TYPES as readonly string[]).includes(type)) throw new PoisonMessageError(`unknown event type ${String(ev.type)}`);
  const time = typeof ev.time === 'string' ? Date.parse(ev.time) : NaN;
  const d = ev.data as Fields | null | undefined;
  if (typeof ev.id !== 'string' || !Number.isFinite(time) || d === null || typeof d !== 'object' || Array.isArray(d)) {
    throw new PoisonMessageError('message is not an auction event: id, time or data missing');
  }
  if (typeof d.auctionId !== 'string' || !AUCTION_ID.test(d.auctionId)) throw new PoisonMessageError('message is not an auction event: data.auctionId must be an auction id');
  const auctionId = d.auctionId;
  const r = new Reader(d, auctionId);
  const seq = r.whole('seq', 1);
  if (seq > 2_147_483_647) throw new PoisonMessageError('message is not an auction event: data.seq is too large');
  if (ev.id !== `${auctionId}:${seq}`) throw new PoisonMessageError('message is not an auction event: its id is not <auctionId>:<seq>');
  const base = { eventId: ev.id, auctionId, seq, time };
  const data = { ...d, auctionId, seq };
  const snapshot = () => ({ leader: r.buyer('leader', true), leaderBid: r.bid('leaderBid', true) });

  switch (type as LoggedAuctionEventType) {
    case 'bid_placed': {
      const amount = r.whole('amount', 1);
      const maxAmount = r.whole('maxAmount', amount);
      return {
        ...base, type: 'bid_placed',
        data: {
          ...data, bidId: r.bid('bidId'), buyerId: r.buyer('buyerId'), amount, maxAmount, placedAt: r.whole('placedAt', 1),
          price: r.whole('price', 1), ...snapshot(), bidCount: r.whole('bidCount', 1), endsAt: r.whole('endsAt', 1),
          ...(d.outbid === undefined ? {} : { outbid: r.buyer('outbid') }),
        },
      };
    }
    case 'bid_retracted':
      return {
        ...base, type: 'bid_retracted',
        data: {
          ...data, bidId: r.bid('bidId'), buyerId: r.buyer('buyerId'), forced: r.flag('forced'), fallbackBid: r.bid('fallbackBid', true),
          price: r.wholeOrNull('price', 1), ...snapshot(), retractedAt: r.whole('retractedAt', 1),
        },
      };
    case 'bid_doubled': {
      const amount = r.whole('amount', 1);
      return {
        ...base, type: 'bid_doubled',
        data: {
          ...data, bidId: r.bid('bidId'), buyerId: r.buyer('buyerId'), added: r.whole('added', 1), amount, maxAmount: r.whole('maxAmount', amount),
          bonus: r.whole('bonus', 1), price: r.whole('price', 1), ...snapshot(), doubledAt: r.whole('doubledAt', 1),
        },
      };
    }
    case 'extended':
      return { ...base, type: 'extended', data: { ...data, endsAt: r.whole('endsAt', 1), byBid: r.bid('byBid') } };
    case 'closed': {
      const offers: AuctionOffer[] = r.list('offers', MAX_OFFERS + 1).map((o, i) => {
        const f = r.object(o, `offers[${i}]`);
        return { buyerId: f.buyer('buyerId'), bidId: f.bid('bidId'), price: f.whole('price', 1), bonus: f.whole('bonus') };
      });
      if (new Set(offers.map((o) => o.buyerId)).size !== offers.length) throw new PoisonMessageError('message is not an auction event: data.offers names a bidder twice');
      return {
        ...base, type: 'closed',
        data: {
          ...data, reason: r.oneOf('reason', ['time', 'buy_now'] as const), closedAt: r.whole('closedAt', 1), price: r.wholeOrNull('price', 1),
          ...snapshot(), reserveMet: r.flag('reserveMet'), offers,
        },
      };
    }
    case 'cancelled': {
      return { ...base, type: 'cancelled', data: { ...data, cancelledAt: r.whole('cancelledAt', 1), bidders: r.buyers('bidders', 1_000_000) } };
    }
  }
}

export class AuctionsWorker extends BatchConsumer<AuctionLogEvent> {
  /** Announcements confirmed by the broker since start (copies included), for tests and ops. */
  announced = 0;

  constructor(private readonly deps: AuctionsWorkerOptions) {
    super({ ...deps, name: 'auctions worker', what: 'an auction event', concern: deps.topology.auctions });
  }

  protected parse(envelope: JsonObject): AuctionLogEvent {
    return parseAuctionEvent(envelope);
  }

  protected async settle(events: AuctionLogEvent[], pub: ConfirmChannel): Promise<void> {
    const announcements = await settleAuctionEvents(this.deps.pool, events);
    // Committed; the source messages are acked only once these are confirmed.
    await publisherOf(pub).publishEvents(this.deps.topology.exchange, announcements);
    this.announced += announcements.length;
  }
}
