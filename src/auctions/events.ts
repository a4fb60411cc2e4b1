/**
 * The auction events: what the auction scripts append to an auction's
 * outbox (lua/auction/*.lua, whose headers are the contract), the strict
 * parser the auctions worker reads them with, and what settlement announces.
 *
 * Logged events have the id `<auctionId>:<seq>`; seq counts every logged
 * event of the auction from 1 with no gap, so the log in Postgres can be
 * checked for completeness and replayed (see rebuild.ts).
 */
import { AUCTION_ID, BID_ID, USER_ID } from '../platform/ids.js';
import { PoisonMessageError, type JsonObject } from '../platform/messaging/consumer.js';
import { MAX_OFFERS } from './rules.js';
import { EVENTS, eventNamed } from '../events/catalogue.js';

export const LOGGED_AUCTION_EVENT_TYPES = ['bid_placed', 'bid_retracted', 'bid_doubled', 'extended', 'closed', 'cancelled'] as const;
export type LoggedAuctionEventType = (typeof LOGGED_AUCTION_EVENT_TYPES)[number];

/** Leader and price after the event, as the script stored them ('' leader: no standing bid). */
export interface AuctionSnapshot {
  price: number | null;
  leader: string;
  leaderBid: string;
}

export interface BidPlacedData extends AuctionSnapshot {
  bidId: string;
  buyerId: string;
  amount: number;
  maxAmount: number;
  placedAt: number;
  price: number;
  bidCount: number;
  endsAt: number;
  /** The previous leader, when this bid took the lead from them. */
  outbid?: string;
}

export interface BidRetractedData extends AuctionSnapshot {
  bidId: string;
  buyerId: string;
  forced: boolean;
  /** The bidder's bid that became standing instead ('' = none). */
  fallbackBid: string;
  retractedAt: number;
}

export interface BidDoubledData extends AuctionSnapshot {
  bidId: string;
  buyerId: string;
  added: number;
  amount: number;
  maxAmount: number;
  bonus: number;
  price: number;
  doubledAt: number;
}

export interface ExtendedData {
  endsAt: number;
  byBid: string;
}

/** One bidder offered the lot: at `price`, of which the house pays `bonus` (its promoter doublings). */
export interface AuctionOffer {
  buyerId: string;
  bidId: string;
  price: number;
  bonus: number;
}

export interface ClosedData extends AuctionSnapshot {
  reason: 'time' | 'buy_now';
  closedAt: number;
  reserveMet: boolean;
  /** Who is offered the lot, in order (already above the reserve; empty: unsold). */
  offers: AuctionOffer[];
}

export interface CancelledData {
  cancelledAt: number;
  /** The bidders with a standing bid when it was cancelled. */
  bidders: string[];
}

interface Logged<T extends LoggedAuctionEventType, D> {
  /** `<auctionId>:<seq>`, the CloudEvent id. */
  eventId: string;
  auctionId: string;
  seq: number;
  type: T;
  time: number;
  data: D & { auctionId: string; seq: number };
}

export type AuctionLogEvent =
  | Logged<'bid_placed', BidPlacedData>
  | Logged<'bid_retracted', BidRetractedData>
  | Logged<'bid_doubled', BidDoubledData>
  | Logged<'extended', ExtendedData>
  | Logged<'closed', ClosedData>
  | Logged<'cancelled', CancelledData>;

type Fields = Record<string, unknown>;

/** Reads the fields of one event's data, each checked; the first bad one makes the message poison. */
class FieldReader {
  constructor(private readonly fields: Fields, private readonly auctionId: string, private readonly where = 'data') {}

  private bad(key: string, what: string): PoisonMessageError {
    return new PoisonMessageError(`message is not an auction event: ${this.where}.${key} ${what}`);
  }

  whole(key: string, min = 0): number {
    const value = this.fields[key];
    if (!Number.isSafeInteger(value) || (value as number) < min) throw this.bad(key, `must be an integer of at least ${min}`);
    return value as number;
  }

  wholeOrNull(key: string, min = 0): number | null {
    return this.fields[key] === null ? null : this.whole(key, min);
  }

  flag(key: string): boolean {
    const value = this.fields[key];
    if (typeof value !== 'boolean') throw this.bad(key, 'must be true or false');
    return value;
  }

  buyer(key: string, orEmpty = false): string {
    const value = this.fields[key];
    if (typeof value === 'string' && (USER_ID.test(value) || (orEmpty && value === ''))) return value;
    throw this.bad(key, 'must be a user id');
  }

  /** A bid id of this auction. */
  bid(key: string, orEmpty = false): string {
    const value = this.fields[key];
    if (typeof value === 'string' && orEmpty && value === '') return value;
    const match = typeof value === 'string' ? BID_ID.exec(value) : null;
    if (!match || `auc_${match[1]}` !== this.auctionId) throw this.bad(key, 'must be a bid id of the auction');
    return value as string;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const value = this.fields[key];
    if (typeof value !== 'string' || !values.includes(value as T)) throw this.bad(key, `must be one of ${values.join(', ')}`);
    return value as T;
  }

  buyers(key: string, max: number): string[] {
    const list = this.list(key, max);
    if (!list.every((buyer) => typeof buyer === 'string' && USER_ID.test(buyer))) throw this.bad(key, 'must be a list of user ids');
    return list as string[];
  }

  list(key: string, max: number): unknown[] {
    const value = this.fields[key];
    if (!Array.isArray(value) || value.length > max) throw this.bad(key, `must be a list of at most ${max}`);
    return value;
  }

  object(value: unknown, where: string): FieldReader {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw this.bad(where, 'must be an object');
    return new FieldReader(value as Fields, this.auctionId, `${this.where}.${where}`);
  }
}

/** The logged event types, by CloudEvent type (from the catalogue). */
const LOGGED_BY_TYPE = new Map<string, LoggedAuctionEventType>(LOGGED_AUCTION_EVENT_TYPES.map((t) => [eventNamed(`auction.${t}`).type, t]));
/** The largest seq Postgres stores (an integer column). */
const MAX_SEQ = 2_147_483_647;
/** The most bidders a cancellation event may name. */
const MAX_CANCELLED_BIDDERS = 1_000_000;

/**
 * Reads one logged auction event strictly: the CloudEvent envelope, its id
 * `<auctionId>:<seq>`, and every field the settlement or a rebuild reads.
 * Money-bearing fields must be non-negative integers; anything else is
 * poison (dead-lettered at once, never retried).
 */
export function parseAuctionEvent(envelope: JsonObject): AuctionLogEvent {
  const type = typeof envelope.type === 'string' ? LOGGED_BY_TYPE.get(envelope.type) : undefined;
  if (!type) throw new PoisonMessageError(`unknown event type ${String(envelope.type)}`);
  const time = typeof envelope.time === 'string' ? Date.parse(envelope.time) : NaN;
  const fields = envelope.data as Fields | null | undefined;
  if (typeof envelope.id !== 'string' || !Number.isFinite(time) || fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
    throw new PoisonMessageError('message is not an auction event: id, time or data missing');
  }
  if (typeof fields.auctionId !== 'string' || !AUCTION_ID.test(fields.auctionId)) {
    throw new PoisonMessageError('message is not an auction event: data.auctionId must be an auction id');
  }
  const auctionId = fields.auctionId;
  const read = new FieldReader(fields, auctionId);
  const seq = read.whole('seq', 1);
  if (seq > MAX_SEQ) throw new PoisonMessageError('message is not an auction event: data.seq is too large');
  if (envelope.id !== `${auctionId}:${seq}`) throw new PoisonMessageError('message is not an auction event: its id is not <auctionId>:<seq>');
  const base = { eventId: envelope.id, auctionId, seq, time };
  const data = { ...fields, auctionId, seq };
  const snapshot = () => ({ leader: read.buyer('leader', true), leaderBid: read.bid('leaderBid', true) });

  switch (type as LoggedAuctionEventType) {
    case 'bid_placed': {
      const amount = read.whole('amount', 1);
      const maxAmount = read.whole('maxAmount', amount);
      return {
        ...base, type: 'bid_placed',
        data: {
          ...data, bidId: read.bid('bidId'), buyerId: read.buyer('buyerId'), amount, maxAmount, placedAt: read.whole('placedAt', 1),
          price: read.whole('price', 1), ...snapshot(), bidCount: read.whole('bidCount', 1), endsAt: read.whole('endsAt', 1),
          ...(fields.outbid === undefined ? {} : { outbid: read.buyer('outbid') }),
        },
      };
    }
    case 'bid_retracted':
      return {
        ...base, type: 'bid_retracted',
        data: {
          ...data, bidId: read.bid('bidId'), buyerId: read.buyer('buyerId'), forced: read.flag('forced'), fallbackBid: read.bid('fallbackBid', true),
          price: read.wholeOrNull('price', 1), ...snapshot(), retractedAt: read.whole('retractedAt', 1),
        },
      };
    case 'bid_doubled': {
      const amount = read.whole('amount', 1);
      return {
        ...base, type: 'bid_doubled',
        data: {
          ...data, bidId: read.bid('bidId'), buyerId: read.buyer('buyerId'), added: read.whole('added', 1), amount, maxAmount: read.whole('maxAmount', amount),
          bonus: read.whole('bonus', 1), price: read.whole('price', 1), ...snapshot(), doubledAt: read.whole('doubledAt', 1),
        },
      };
    }
    case 'extended':
      return { ...base, type: 'extended', data: { ...data, endsAt: read.whole('endsAt', 1), byBid: read.bid('byBid') } };
    case 'closed': {
      const offers: AuctionOffer[] = read.list('offers', MAX_OFFERS + 1).map((entry, i) => {
        const offer = read.object(entry, `offers[${i}]`);
        return { buyerId: offer.buyer('buyerId'), bidId: offer.bid('bidId'), price: offer.whole('price', 1), bonus: offer.whole('bonus') };
      });
      if (new Set(offers.map((offer) => offer.buyerId)).size !== offers.length) {
        throw new PoisonMessageError('message is not an auction event: data.offers names a bidder twice');
      }
      return {
        ...base, type: 'closed',
        data: {
          ...data, reason: read.oneOf('reason', ['time', 'buy_now'] as const), closedAt: read.whole('closedAt', 1), price: read.wholeOrNull('price', 1),
          ...snapshot(), reserveMet: read.flag('reserveMet'), offers,
        },
      };
    }
    case 'cancelled':
      return { ...base, type: 'cancelled', data: { ...data, cancelledAt: read.whole('cancelledAt', 1), bidders: read.buyers('bidders', MAX_CANCELLED_BIDDERS) } };
  }
}

/** What settlement announces (routed to the notifications concern). */
export const ANNOUNCEMENT_TYPES = {
  /** To a leader a new bid took the lead from. */
  outbid: EVENTS.auctionOutbid.type,
  won: EVENTS.auctionWon.type,
  lost: EVENTS.auctionLost.type,
  offerFailed: EVENTS.auctionOfferFailed.type,
  /** To a second-chance winner (the bidders offered the lot before them could not pay), in place of won. */
  offer: EVENTS.auctionOffer.type,
  /** To each bidder of a cancelled auction: they are released. */
  released: EVENTS.auctionReleased.type,
  /** To the seller's webhooks (no buyer is told of it): the close is settled, sold or not. */
  settled: EVENTS.auctionSettled.type,
} as const;

/** auction.created: what its collection's followers are told (catalogue: the schema). */
export interface AuctionCreatedData {
  auctionId: string;
  collection: string;
  title: string;
  currency: string;
  startPrice: number;
  startsAt: number;
  endsAt: number;
}

export interface AuctionOutbidData {
  auctionId: string;
  /** The bidder who lost the lead. */
  buyerId: string;
  /** The price after the bid that took it. */
  price: number;
  byBid: string;
}

export interface AuctionWonData {
  auctionId: string;
  buyerId: string;
  bidId: string;
  currency: string;
  /** The price of the lot. */
  price: number;
  /** What the winner's wallet was debited: price - bonus. */
  paid: number;
  /** What the house paid (promoter doublings), at most the price. */
  bonus: number;
}

/** The won announcement of a second-chance winner: `rank` is their place in the close's offers (2 or more). */
export interface AuctionOfferData extends AuctionWonData {
  rank: number;
}

export interface AuctionOfferFailedData {
  auctionId: string;
  buyerId: string;
  bidId: string;
  currency: string;
  price: number;
  rank: number;
  reason: 'cannot_pay';
}

export interface AuctionLostData {
  auctionId: string;
  buyerId: string;
  outcome: 'sold' | 'unsold';
  currency: string;
  /** The final price when sold, else null. */
  price: number | null;
}

export interface AuctionSettledData {
  auctionId: string;
  /** Who paid for the lot ('': nobody, unsold). */
  winner: string;
  bidId: string;
  currency: string;
  /** The final price when sold, else null. */
  price: number | null;
  /** What the winner's wallet was debited (price - bonus; 0 unsold). */
  paid: number;
  settledAt: number;
}

export interface AuctionCancelledData {
  auctionId: string;
  buyerId: string;
  cancelledAt: number;
}
