/**
 * The events the notifications worker turns into notifications, as it reads
 * them off the notifications queue: the auction settlement's announcements
 * (catalogue: auction.outbid, won, offer, lost, offer_failed, released), the
 * promoter's doubling straight from the auction's outbox (auction.bid_doubled)
 * and the order settlement's results (purchase.confirmed, failed, cancelled),
 * each to one buyer; auction.created, told to the collection's followers by
 * a fan-out (src/notifications/fan-out.ts); notification.fanout, a fan-out's
 * next step; and notification.due, a scheduled send that is due
 * (src/notifications/sends.ts). Each is checked against its catalogue
 * schema; one that fails can never be
 * delivered and is poison (dead-lettered at once with its reason).
 */
import { EVENTS, eventTypeOf, type EventType } from '../events/catalogue.js';
import { compileSchema, fieldErrors, type Validator } from '../platform/http/validate.js';
import { PoisonMessageError, type JsonObject } from '../platform/messaging/consumer.js';
import type {
  AuctionCancelledData, AuctionCreatedData, AuctionLostData, AuctionOfferData, AuctionOfferFailedData, AuctionOutbidData, AuctionWonData, BidDoubledData,
} from '../auctions/events.js';
import type { PurchaseCancelledData, PurchaseConfirmedData, PurchaseFailedData } from '../sales/events.js';

interface Of<T extends string, D> {
  /** The CloudEvent id: stable across redeliveries, so it keys the notification. */
  eventId: string;
  type: T;
  time: number;
  data: D;
}

export type Announcement =
  | Of<'auction.outbid', AuctionOutbidData>
  | Of<'auction.won', AuctionWonData>
  | Of<'auction.lost', AuctionLostData>
  | Of<'auction.offer_failed', AuctionOfferFailedData>
  | Of<'auction.offer', AuctionOfferData>
  | Of<'auction.released', AuctionCancelledData>
  | Of<'auction.bid_doubled', BidDoubledData & { auctionId: string; seq: number }>
  | Of<'purchase.confirmed', PurchaseConfirmedData>
  | Of<'purchase.failed', PurchaseFailedData>
  | Of<'purchase.cancelled', PurchaseCancelledData>;

/** What the notifications queue carries: announcements to one buyer, and what fans out to many. */
export type NotificationEvent = Announcement | Of<'auction.created', AuctionCreatedData> | Of<'notification.fanout', { eventId: string; part?: number }>
  | Of<'notification.due', { sendId: string }>;

const ANNOUNCED: EventType[] = [
  EVENTS.auctionOutbid, EVENTS.auctionWon, EVENTS.auctionLost, EVENTS.auctionOfferFailed, EVENTS.auctionOffer, EVENTS.auctionReleased,
  EVENTS.auctionBidDoubled, EVENTS.purchaseConfirmed, EVENTS.purchaseFailed, EVENTS.purchaseCancelled,
  EVENTS.auctionCreated, EVENTS.notificationFanOut, EVENTS.notificationDue,
];

/** What an announcement is about, as its notification names it: an auction's lot or a sale. */
export type Subject = { kind: 'auction'; id: string } | { kind: 'sale'; id: string };

export const subjectOf = (a: Announcement): Subject => ('auctionId' in a.data ? { kind: 'auction', id: a.data.auctionId } : { kind: 'sale', id: a.data.saleId });

const validators = new Map<string, { name: string; check: Validator<unknown> }>(
  ANNOUNCED.map((e) => [e.type, { name: e.name, check: compileSchema(e.schema) }]),
);

/** The longest event id accepted (the inbox's key column holds 200). */
const MAX_EVENT_ID = 200;

export function parseAnnouncement(envelope: JsonObject): NotificationEvent {
  const type = typeof envelope.type === 'string' ? envelope.type : '';
  const known = validators.get(type);
  if (!known) {
    throw new PoisonMessageError(eventTypeOf(type) ? `${type} is not told to anyone` : `unknown event type ${String(envelope.type)}`);
  }
  const id = envelope.id;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_EVENT_ID) throw new PoisonMessageError(`message is not an announcement: id must be a string of 1 to ${MAX_EVENT_ID} characters`);
  const time = typeof envelope.time === 'string' ? Date.parse(envelope.time) : NaN;
  if (!Number.isFinite(time)) throw new PoisonMessageError('message is not an announcement: time must be a date-time');
  return { eventId: id, type: known.name, time, data: checkedData(known.check, envelope.data, type) } as NotificationEvent;
}

/** An event's data if its schema holds; else poison naming the first field at fault. */
export function checkedData<T>(check: Validator<T>, data: unknown, what: string): T {
  if (check(data)) return data;
  const [first] = fieldErrors(check.errors);
  throw new PoisonMessageError(`message is not ${what}: data${first?.path === '/' ? '' : first?.path} ${first?.message}`);
}
