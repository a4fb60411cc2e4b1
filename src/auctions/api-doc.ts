/** The auctions API's contract (OpenAPI): what each route of routes.ts takes and answers. */
import { COUNT, idSchema, INSTANT, LIMIT_PARAM, AFTER_PARAM, pageOf, strictObject, type RouteDoc, type Schema } from '../platform/http/doc.js';
import { AUCTION_ID, BID_ID, USER_ID } from '../platform/ids.js';
import { CURRENCY } from '../platform/http/validate.js';

const TAGS = ['auctions'];
const AUCTION_PARAM = { id: { schema: idSchema(AUCTION_ID), description: 'The auction.' } };
const HANDLE = { type: 'string', description: 'A bidder\'s public handle (the same for one bidder throughout one auction, unlinkable across auctions).' };
const AMOUNT = { type: 'integer', minimum: 1 };

/** An auction as auctions.ts `viewOf` answers it; `increment` as the creation takes it. */
export const auctionView = (increment: unknown): Schema => strictObject({
  id: idSchema(AUCTION_ID),
  sellerId: { anyOf: [idSchema(USER_ID), { type: 'null' }], description: 'null for an auction an operator created.' },
  title: { type: 'string' },
  collection: { type: ['string', 'null'] },
  currency: CURRENCY,
  startPrice: AMOUNT,
  buyNowPrice: { type: ['integer', 'null'], minimum: 1 },
  increment: increment as Schema,
  softCloseSeconds: {
    type: 'number', minimum: 0,
    description: 'Whole seconds for an auction created through this API; the store keeps milliseconds, so one written to it otherwise (test fixtures) may show a fraction.',
  },
  startsAt: INSTANT,
  endsAt: { ...INSTANT, description: 'After the extensions bids near the end caused.' },
  hardCloseAt: INSTANT,
  status: { enum: ['scheduled', 'open', 'closing', 'closed', 'cancelled'] },
  currentPrice: { type: ['integer', 'null'], minimum: 1, description: 'null before the first bid.' },
  nextMinimumBid: AMOUNT,
  bidCount: COUNT,
  leader: { anyOf: [HANDLE, { type: 'null' }] },
  reserveMet: { type: 'boolean' },
  promoter: { type: 'boolean' },
  result: {
    anyOf: [
      strictObject({ outcome: { enum: ['sold', 'unsold'] }, winner: { anyOf: [HANDLE, { type: 'null' }] }, finalPrice: { type: ['integer', 'null'] } }),
      { type: 'null' },
    ],
    description: 'Once settled.',
  },
});

const BID_VIEW: Schema = strictObject({
  bidId: idSchema(BID_ID),
  bidder: HANDLE,
  amount: AMOUNT,
  maxAmount: { ...AMOUNT, description: 'With `mine=true` only: your maximum.' },
  status: { enum: ['active', 'retracted'] },
  doubled: { type: 'boolean', description: 'The promoter doubled it.' },
  placedAt: INSTANT,
  seq: { type: 'integer', minimum: 1 },
}, ['maxAmount']);

const BID_ANSWER: Schema = strictObject({
  bidId: idSchema(BID_ID),
  leading: { type: 'boolean' },
  currentPrice: AMOUNT,
  nextMinimumBid: AMOUNT,
  endsAt: INSTANT,
  closed: { type: 'boolean' },
});

const RETRACTION: Schema = strictObject({
  bidId: idSchema(BID_ID),
  status: { const: 'retracted' },
  currentPrice: { type: ['integer', 'null'] },
  endsAt: INSTANT,
});

export function auctionDocs(bodies: { auction: { schema: unknown }; bid: { schema: unknown } }) {
  const view = auctionView((bodies.auction.schema as { properties: Record<string, unknown> }).properties.increment);
  const docs = {
    create: {
      summary: 'Create an auction', description: 'Terms and rules: docs/auctions.md.', tags: TAGS, caller: 'operatorOrSeller', body: bodies.auction, idempotent: true,
      responses: { 201: { description: 'The auction.', schema: view } },
    },
    list: {
      summary: 'Open auctions', tags: TAGS, query: { limit: LIMIT_PARAM, after: AFTER_PARAM('auctions', AUCTION_ID) },
      responses: { 200: { description: 'A page of auctions.', schema: pageOf(view, idSchema(AUCTION_ID)) } },
    },
    get: {
      summary: 'An auction: price, next minimum bid, leader, end, status, result', tags: TAGS, params: AUCTION_PARAM,
      responses: { 200: { description: 'The auction.', schema: view } },
    },
    cancel: {
      summary: 'Cancel an auction that has not closed', tags: TAGS, caller: 'operatorOrSeller', params: AUCTION_PARAM, refusals: ['AUCTION_CLOSED'],
      responses: { 200: { description: 'The cancelled auction.', schema: view } },
    },
    history: {
      summary: 'Bid history, newest first', tags: TAGS, caller: 'optionalBuyer', params: AUCTION_PARAM,
      query: {
        limit: LIMIT_PARAM,
        before: { schema: { type: 'string', pattern: '^[1-9]\\d{0,11}$' }, description: 'The `next` of the previous page: bids before this sequence number.' },
        mine: { schema: { enum: ['true', 'false'] }, description: '`true`: only your bids, with your maxima (needs your bearer token).' },
      },
      responses: { 200: { description: 'A page of bids.', schema: pageOf(BID_VIEW, { type: 'integer', minimum: 1 }) } },
    },
    bid: {
      summary: 'Bid', description: 'Decided at once in Redis. `maxAmount`: bid for you up to it (proxy bidding).',
      tags: TAGS, caller: 'buyer', params: AUCTION_PARAM, body: bodies.bid, idempotent: true,
      refusals: ['BID_TOO_LOW', 'NOT_ABOVE_OWN_BID', 'AUCTION_NOT_OPEN', 'AUCTION_CLOSED', 'RATE_LIMITED'],
      responses: { 202: { description: 'Accepted.', schema: BID_ANSWER } },
    },
    retract: {
      summary: 'Retract your bid', description: 'While the auction is open and outside its last soft-close window.',
      tags: TAGS, caller: 'buyer',
      params: { ...AUCTION_PARAM, bidId: { schema: idSchema(BID_ID), description: 'Your bid.' } },
      refusals: ['RETRACTION_TOO_LATE', 'AUCTION_CLOSED'],
      responses: { 200: { description: 'Retracted.', schema: RETRACTION } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}
