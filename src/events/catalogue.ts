/**
 * The event catalogue: every event type Stampede emits, its version, the
 * queues it is routed to and the JSON Schema of its `data`. It is the one
 * home of these names: the Lua library gets them as `EVENT` (generated from
 * here, like `OUTCOME`), the topology binds queues from it, the workers'
 * parsers and the event logs take their type strings from it, and the tests
 * check every event the scripts and workers emit against its schema.
 *
 * It imports nothing: products and the platform both read it.
 *
 * Events travel as CloudEvents 1.0; `type` is `stampede.<name>.v<version>`
 * and the routing key is `<name>.v<version>`.
 */

/** The queues of the topology, each consumed by one worker. */
export type Concern = 'orders' | 'auctions' | 'notifications' | 'email' | 'sms' | 'webhooks';

/** A JSON Schema (draft 2020-12 subset, as ajv reads it). */
export type JsonSchema = Record<string, unknown>;

export interface EventType {
  /** `purchase.accepted` */
  name: string;
  version: number;
  /** `stampede.purchase.accepted.v1` */
  type: string;
  /** `purchase.accepted.v1` */
  routingKey: string;
  /** Who emits it: a Lua script (through an outbox) or a worker (an announcement). */
  emittedBy: string;
  concerns: Concern[];
  description: string;
  /** The JSON Schema of the CloudEvent's `data`. */
  schema: JsonSchema;
  /**
   * The name sellers subscribe to it by and GET /v1/event-types lists it
   * under (`bid.placed` for auction.bid_placed); absent: not public (no
   * webhook ever carries it).
   */
  publicName?: string;
}

const id = (prefix: string) => ({ type: 'string', pattern: `^${prefix}_[0-9a-z]{12}$` });
const USER = id('usr');
const SALE = id('sal');
const AUCTION = id('auc');
const PURCHASE = { type: 'string', pattern: '^pur_[0-9a-z]{12}(?:s[1-9a-f])?_(?:[0-9a-z]{8})?[0-9a-z]{16}$' };
const BID = { type: 'string', pattern: '^bid_[0-9a-z]{12}_[0-9a-z]{16}$' };
const OR_EMPTY = (s: JsonSchema) => ({ anyOf: [s, { const: '' }] });
const COUNT = { type: 'integer', minimum: 0 };
const POSITIVE = { type: 'integer', minimum: 1 };
const MS = { type: 'integer', minimum: 1, description: 'milliseconds since the Unix epoch' };
const MONEY = { type: 'integer', minimum: 0, description: 'minor units of the currency' };
const CURRENCY = { type: 'string', pattern: '^[A-Z]{3}$' };
const PRICE_OR_NULL = { anyOf: [POSITIVE, { type: 'null' }] };

const object = (properties: Record<string, JsonSchema>, optional: string[] = []): JsonSchema => ({
  type: 'object',
  properties,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  additionalProperties: false,
});

const order = { purchaseId: PURCHASE, saleId: SALE, buyerId: USER, quantity: POSITIVE, unitPrice: MONEY, currency: CURRENCY };
const purchase = { ...order, acceptedAt: MS };
/** A settled order as its buyer is told of it: `amount` = quantity x unitPrice. */
const settled = { ...order, amount: MONEY };
/** Every logged auction event carries its auction and its place in the auction's log (1, 2, … with no gap). */
const logged = { auctionId: AUCTION, seq: POSITIVE };
/** Leader and price after the event ('' leader: no standing bid). */
const standing = { leader: OR_EMPTY(USER), leaderBid: OR_EMPTY(BID) };

/** What a channel's request names: the notification's event and its recipient (the row holds the rest). */
/** A scheduled notification: an operator's announcement (`ann_`) or a sale's opening notice (`sop_` and the sale id's body). */
const SEND = { type: 'string', pattern: '^(?:ann|sop)_[0-9a-z]{12}$' };

const DELIVERY = { eventId: { type: 'string', minLength: 1, maxLength: 200 }, recipientId: USER };

function define(name: string, emittedBy: string, concerns: Concern[], description: string, schema: JsonSchema, version = 1): EventType {
  return { name, version, type: `stampede.${name}.v${version}`, routingKey: `${name}.v${version}`, emittedBy, concerns, description, schema };
}

/** A public event: also routed to the webhooks queue, and delivered to the seller endpoints that subscribe to `publicName` (its own name by default). */
function published(e: EventType, publicName = e.name): EventType {
  return { ...e, concerns: [...e.concerns, 'webhooks'], publicName };
}

/** A sale's terms as its seller is told of them. */
const saleTerms = { saleId: SALE, sellerId: OR_EMPTY(USER), name: { type: 'string', minLength: 1, maxLength: 200 }, sku: { type: 'string', minLength: 1, maxLength: 200 },
  unitPrice: MONEY, currency: CURRENCY, stock: COUNT, perBuyerLimit: POSITIVE, startsAt: MS, endsAt: MS };

export const EVENTS = {
  purchaseAccepted: published(define('purchase.accepted', 'lua/sale/reservePurchases-n.lua', ['orders'],
    'A purchase was accepted: its stock is reserved until it is settled.', object(purchase))),
  purchaseCancelRequested: define('purchase.cancel_requested', 'lua/sale/requestCancel-2.lua', ['orders'],
    'The buyer asked to cancel a purchase; settlement refunds it, or records it cancelled.', object({ ...purchase, requestedAt: MS })),
  purchaseExpired: define('purchase.expired', 'lua/sale/expirePurchase-2.lua', ['orders'],
    'A purchase passed its reservation deadline neither settled nor failed; settlement fails it (RESERVATION_EXPIRED) and releases its stock, unless its own settlement came first.',
    object({ ...purchase, expiredAt: MS })),

  auctionBidPlaced: published(define('auction.bid_placed', 'lua/auction/placeBids-n.lua', ['auctions'],
    'A bid was accepted; `outbid` names the leader it took the lead from.',
    object({ ...logged, bidId: BID, buyerId: USER, amount: POSITIVE, maxAmount: POSITIVE, placedAt: MS, price: POSITIVE, ...standing,
      bidCount: POSITIVE, endsAt: MS, outbid: USER }, ['outbid'])), 'bid.placed'),
  auctionBidRetracted: define('auction.bid_retracted', 'lua/auction/retractBid-6.lua', ['auctions'],
    'A bid was retracted (by its bidder, or forced when the bidder was deleted).',
    object({ ...logged, bidId: BID, buyerId: USER, forced: { type: 'boolean' }, fallbackBid: OR_EMPTY(BID), retractedAt: MS, price: PRICE_OR_NULL, ...standing })),
  auctionBidDoubled: define('auction.bid_doubled', 'lua/auction/promoteBid-5.lua', ['auctions', 'notifications'],
    'The promoter doubled a bid; the house pays the bonus. Logged by the auctions worker; its bidder is told (bid.doubled) straight from it.',
    object({ ...logged, bidId: BID, buyerId: USER, added: POSITIVE, amount: POSITIVE, maxAmount: POSITIVE, bonus: POSITIVE, price: POSITIVE,
      doubledAt: MS, ...standing })),
  auctionExtended: published(define('auction.extended', 'lua/auction/placeBids-n.lua', ['auctions'],
    'A bid in the soft-close window moved the end (never past the hard close).', object({ ...logged, endsAt: MS, byBid: BID }))),
  auctionClosed: published(define('auction.closed', 'lua/auction/closeAuction-5.lua', ['auctions'],
    'The auction closed (at its end or by a buy-now bid); `offers` lists who is offered the lot, in order.',
    object({ ...logged, reason: { enum: ['time', 'buy_now'] }, closedAt: MS, reserveMet: { type: 'boolean' }, price: PRICE_OR_NULL, ...standing,
      offers: { type: 'array', items: object({ buyerId: USER, bidId: BID, price: POSITIVE, bonus: COUNT }) } }))),
  auctionCancelled: published(define('auction.cancelled', 'lua/auction/closeAuction-5.lua', ['auctions'],
    'The auction was cancelled; `bidders` had a standing bid.',
    object({ ...logged, cancelledAt: MS, bidders: { type: 'array', items: USER } }))),

  auctionCreated: published(define('auction.created', 'lua/auction/loadAuction-2.lua', ['notifications'],
    'An auction was created in a collection: its followers are told. Written with the auction\'s first load into Redis, under the id <auctionId>:created.',
    object({ auctionId: AUCTION, collection: { type: 'string', minLength: 1, maxLength: 200 }, title: { type: 'string', minLength: 1, maxLength: 200 },
      currency: CURRENCY, startPrice: POSITIVE, startsAt: MS, endsAt: MS }))),

  auctionOutbid: define('auction.outbid', 'src/auctions (settlement)', ['notifications'],
    'To a leader a new bid took the lead from.', object({ auctionId: AUCTION, buyerId: USER, price: POSITIVE, byBid: BID })),
  auctionWon: define('auction.won', 'src/auctions (settlement)', ['notifications'],
    'To the winner: their wallet was debited `paid` (price - bonus).',
    object({ auctionId: AUCTION, buyerId: USER, bidId: BID, currency: CURRENCY, price: POSITIVE, paid: MONEY, bonus: MONEY })),
  auctionLost: define('auction.lost', 'src/auctions (settlement)', ['notifications'],
    'To every other bidder of a closed auction.',
    object({ auctionId: AUCTION, buyerId: USER, outcome: { enum: ['sold', 'unsold'] }, currency: CURRENCY, price: PRICE_OR_NULL })),
  auctionOfferFailed: define('auction.offer_failed', 'src/auctions (settlement)', ['notifications'],
    'To a bidder offered the lot who could not pay; the next bidder is offered it.',
    object({ auctionId: AUCTION, buyerId: USER, bidId: BID, currency: CURRENCY, price: POSITIVE, rank: POSITIVE, reason: { const: 'cannot_pay' } })),
  auctionOffer: define('auction.offer', 'src/auctions (settlement)', ['notifications'],
    'To the bidder who took the lot after the bidder(s) offered it before them could not pay (a second-chance offer, `rank` > 1), in place of auction.won: their wallet was debited `paid` (price - bonus).',
    object({ auctionId: AUCTION, buyerId: USER, bidId: BID, currency: CURRENCY, price: POSITIVE, paid: MONEY, bonus: MONEY, rank: { type: 'integer', minimum: 2 } })),
  auctionReleased: define('auction.released', 'src/auctions (settlement)', ['notifications'],
    'To each bidder of a cancelled auction: their bids are released.', object({ auctionId: AUCTION, buyerId: USER, cancelledAt: MS })),

  purchaseConfirmed: published(define('purchase.confirmed', 'src/sales (settlement)', ['notifications'],
    'To the buyer: their order is confirmed, `amount` taken from their wallet.', object({ ...settled, settledAt: MS }))),
  purchaseFailed: published(define('purchase.failed', 'src/sales (settlement)', ['notifications'],
    'To the buyer: their order failed for `reason` (INSUFFICIENT_FUNDS: the wallet did not hold `amount`; UNKNOWN_BUYER: the token named no buyer; RESERVATION_EXPIRED: it was not settled by its reservation deadline; UNSETTLEABLE: settlement gave up on it, and it is in the dead letters); nothing was charged and the stock went back on sale.',
    object({ ...settled, reason: { enum: ['INSUFFICIENT_FUNDS', 'UNKNOWN_BUYER', 'RESERVATION_EXPIRED', 'UNSETTLEABLE'] }, settledAt: MS }))),
  purchaseCancelled: published(define('purchase.cancelled', 'src/sales (settlement)', ['notifications'],
    'To the buyer: the order they cancelled is cancelled; `refunded` went back to their wallet (0: it had not been charged).',
    object({ ...settled, refunded: MONEY, cancelledAt: MS }))),

  saleCreated: published(define('sale.created', 'src/sales (sales)', [], 'A sale was created (its terms as stored).', object(saleTerms))),
  saleUpdated: published(define('sale.updated', 'src/sales (sales)', [], 'A sale\'s terms changed (stock added); `stock` is its stock now.', object({ ...saleTerms, updatedAt: MS }))),
  saleSoldOut: published(define('sale.sold_out', 'lua/sale/settlePurchases-n.lua', [], 'Every unit of a sale is sold (confirmed orders hold its whole stock): written to the sale\'s outbox by the settlement call that confirms its last unit (a sharded sale: by lua/sale/announceSoldOut-2.lua once every shard has sold), under the id <saleId>:sold_out:<stock>.', object({ saleId: SALE, stock: COUNT, soldOutAt: MS }))),
  saleClosed: published(define('sale.closed', 'src/sales (sales)', [], 'A sale was closed by its seller or an operator: nothing more can be bought.', object({ saleId: SALE, closedAt: MS }))),
  purchaseRefunded: published(define('purchase.refunded', 'src/sales (settlement)', [], 'A confirmed order was cancelled and `refunded` went back to the buyer\'s wallet.', object({ ...settled, refunded: POSITIVE, refundedAt: MS }))),
  auctionSettled: published(define('auction.settled', 'src/auctions (settlement)', [], 'A closed auction is settled: `winner` paid `paid` for it (\'\': nobody took the lot). Announced by the auctions worker once the settlement committed, under the id <auctionId>:settled.',
    object({ auctionId: AUCTION, winner: OR_EMPTY(USER), bidId: OR_EMPTY(BID), currency: CURRENCY, price: PRICE_OR_NULL, paid: MONEY, settledAt: MS }))),

  notificationEmail: define('notification.email', 'src/notifications (worker)', ['email'],
    'An e-mail a notification asks for: the notifications worker recorded it (notification_emails); the e-mail worker sends it once.',
    object(DELIVERY)),
  notificationSms: define('notification.sms', 'src/notifications (worker)', ['sms'],
    'An SMS a notification asks for: the notifications worker recorded it (notification_sms); the SMS worker sends it once.',
    object(DELIVERY)),
  notificationDue: define('notification.due', 'lua/notification/claimDueSends-2.lua', ['notifications'],
    'A scheduled notification (notification_sends) is due: the scheduler claimed it off the due index; the notifications worker fans it out to its audience once.',
    object({ sendId: SEND })),
  notificationFanOut: define('notification.fanout', 'src/notifications (worker)', ['notifications'],
    'The next step of a part of a fan-out the notifications worker recorded (notification_fanouts, notification_fanout_parts): it tells the next chunk of that part of the audience (part 0 when absent).',
    object({ eventId: DELIVERY.eventId, part: { type: 'integer', minimum: 0, maximum: 63 } }, ['part'])),
} as const satisfies Record<string, EventType>;

export type EventKey = keyof typeof EVENTS;

/** Every event type, in catalogue order. */
export const EVENT_TYPES: EventType[] = Object.values(EVENTS);

const byType = new Map(EVENT_TYPES.map((e) => [e.type, e]));
const byName = new Map(EVENT_TYPES.map((e) => [e.name, e]));

/** The catalogue entry of a CloudEvent type, or undefined for a type Stampede does not emit. */
export const eventTypeOf = (type: string): EventType | undefined => byType.get(type);

/** The catalogue entry named `purchase.accepted`; throws for a name the catalogue does not have (a programming error). */
export function eventNamed(name: string): EventType {
  const e = byName.get(name);
  if (!e) throw new Error(`the event catalogue has no ${name}`);
  return e;
}

/** The public event types (GET /v1/event-types, webhook subscriptions), in catalogue order. */
export const PUBLIC_EVENT_TYPES: (EventType & { publicName: string })[] = EVENT_TYPES.filter((e): e is EventType & { publicName: string } => e.publicName !== undefined);

/** The public names sellers subscribe by. */
export const PUBLIC_EVENT_NAMES: string[] = PUBLIC_EVENT_TYPES.map((e) => e.publicName);

const byPublicType = new Map(PUBLIC_EVENT_TYPES.map((e) => [e.type, e]));

/** The public entry of a CloudEvent type, or undefined for a type no webhook carries. */
export const publicEventOf = (type: string): (EventType & { publicName: string }) | undefined => byPublicType.get(type);

/** The routing keys bound to a concern's queue. */
export const bindingsOf = (concern: Concern): string[] => EVENT_TYPES.filter((e) => e.concerns.includes(concern)).map((e) => e.routingKey);

/** The catalogue as the Lua library reads it: `local EVENT = { ['purchase.accepted'] = 'stampede.purchase.accepted.v1', … }`. */
export function luaEventTable(): string {
  return `local EVENT = { ${EVENT_TYPES.map((e) => `['${e.name}'] = '${e.type}'`).join(', ')} }\n`;
}
