/** The auctions API: creation and cancellation (operators, sellers), reads (anyone), bids (buyers). */
import type { JSONSchemaType } from 'ajv';
import { AppError } from '../platform/errors.js';
import { AUCTION_ID, BID_ID } from '../platform/ids.js';
import type { HttpServer, Reply } from '../platform/http/server.js';
import { pageLimit, type RouteKit } from '../platform/http/route-kit.js';
import { compile, CURRENCY, DATE_TIME, validate } from '../platform/http/validate.js';
import { MAX_AUCTION_AMOUNT, MAX_SOFT_CLOSE_SECONDS, MAX_TIERS, type NewAuction } from './rules.js';
import type { Auctions } from './auctions.js';
import type { Bids } from './bids.js';
import { auctionDocs } from './api-doc.js';

const AMOUNT = { type: 'integer', minimum: 1, maximum: MAX_AUCTION_AMOUNT } as const;

const auctionSchema = {
  type: 'object',
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 200 },
    collection: { type: 'string', minLength: 1, maxLength: 200 },
    currency: CURRENCY,
    startPrice: AMOUNT,
    reservePrice: { type: 'integer', minimum: 0, maximum: MAX_AUCTION_AMOUNT },
    buyNowPrice: AMOUNT,
    startsAt: DATE_TIME,
    endsAt: DATE_TIME,
    hardCloseAt: DATE_TIME,
    softCloseSeconds: { type: 'integer', minimum: 0, maximum: MAX_SOFT_CLOSE_SECONDS },
    increment: {
      oneOf: [
        {
          type: 'object',
          properties: { type: { const: 'absolute' }, amount: { type: 'integer', minimum: 1, maximum: MAX_AUCTION_AMOUNT } },
          required: ['type', 'amount'], additionalProperties: false,
        },
        {
          type: 'object',
          properties: { type: { const: 'percentage' }, basisPoints: { type: 'integer', minimum: 1, maximum: 10_000 } },
          required: ['type', 'basisPoints'], additionalProperties: false,
        },
        {
          type: 'object',
          properties: {
            type: { const: 'tiered' },
            tiers: {
              type: 'array', minItems: 1, maxItems: MAX_TIERS,
              items: {
                type: 'object',
                properties: { from: { type: 'integer', minimum: 0, maximum: MAX_AUCTION_AMOUNT }, increment: { type: 'integer', minimum: 1, maximum: MAX_AUCTION_AMOUNT } },
                required: ['from', 'increment'], additionalProperties: false,
              },
            },
          },
          required: ['type', 'tiers'], additionalProperties: false,
        },
      ],
    },
    promoter: {
      type: 'object',
      properties: {
        enabled: { type: 'boolean' },
        minIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
        maxIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
        policy: { type: 'string', enum: ['uniform', 'recency'] },
      },
      required: ['enabled', 'minIntervalSeconds', 'maxIntervalSeconds', 'policy'],
      additionalProperties: false,
    },
  },
  required: ['title', 'currency', 'startPrice', 'startsAt', 'endsAt', 'softCloseSeconds', 'increment'],
  additionalProperties: false,
};

export function registerAuctionRoutes(http: HttpServer, kit: RouteKit, auctions: Auctions, bids: Bids): void {
  // ajv checks the oneOf at run time; its static types cannot express the union.
  const auctionBody = compile<NewAuction>(auctionSchema as unknown as JSONSchemaType<NewAuction>);
  const bidBody = compile<{ amount: number; maxAmount?: number }>({
    type: 'object',
    properties: { amount: AMOUNT, maxAmount: { ...AMOUNT, nullable: true } },
    required: ['amount'],
    additionalProperties: false,
  });
  const auctionId = (value: string) => kit.idParam(value, AUCTION_ID, 'auction');
  const doc = auctionDocs({ auction: auctionBody, bid: bidBody });

  http.route('post', '/v1/auctions', async (ctx, raw) => {
    const principal = await kit.principalOf(ctx, ['operator', 'seller']);
    const body = validate(auctionBody, raw);
    return kit.idempotent(ctx, principal, body, async () => ({ status: 201, body: await auctions.create(body, principal) }));
  }, { doc: doc.create });
  http.route('get', '/v1/auctions', async (ctx) => {
    const { limit, after } = kit.pageOf(ctx, AUCTION_ID);
    return { status: 200, body: await auctions.listOpen(limit, after) };
  }, { doc: doc.list });
  http.route('get', '/v1/auctions/:id', async (ctx) => ({ status: 200, body: await auctions.get(auctionId(ctx.params[0]!)) }), { doc: doc.get });
  http.route('post', '/v1/auctions/:id/cancel', async (ctx) => {
    const principal = await kit.principalOf(ctx, ['operator', 'seller']);
    return { status: 200, body: await auctions.cancel(auctionId(ctx.params[0]!), principal) };
  }, { body: false, doc: doc.cancel });

  http.route('get', '/v1/auctions/:id/bids', async (ctx) => {
    const id = auctionId(ctx.params[0]!);
    const query = new URLSearchParams(ctx.query);
    const limit = pageLimit(query);
    const rawBefore = query.get('before');
    if (rawBefore !== null && !/^[1-9]\d{0,11}$/.test(rawBefore)) throw AppError.invalid('query:before', 'is invalid', 'before must be a sequence number this list gave');
    const mineParam = query.get('mine');
    if (mineParam !== null && mineParam !== 'true' && mineParam !== 'false') throw AppError.invalid('query:mine', 'is invalid', 'mine must be true or false');
    const mine = mineParam === 'true' ? (await kit.buyerOf(ctx)) : undefined;
    return { status: 200, body: await bids.history(id, limit, rawBefore === null ? undefined : Number(rawBefore), mine) };
  }, { doc: doc.history });

  // --- bids (buyers): decided by one Lua call -------------------------------
  http.route('post', '/v1/auctions/:id/bids', (ctx, raw) => {
    const bid = (buyerId: string) => {
      const id = auctionId(ctx.params[0]!);
      const { amount, maxAmount } = validate(bidBody, raw);
      const idempotencyKey = kit.idempotencyKeyOf(ctx);
      return bids.bid(buyerId, id, amount, maxAmount ?? undefined, idempotencyKey).then((answer): Reply => {
        const { replayed, ...body } = answer;
        return { status: 202, body, headers: replayed ? { 'Idempotent-Replayed': 'true' } : undefined };
      });
    };
    // A buyer this node knows bids at once; one it does not waits for the lookup.
    const buyer = kit.buyerOf(ctx);
    return typeof buyer === 'string' ? bid(buyer) : buyer.then(bid);
  }, { doc: doc.bid });
  http.route('del', '/v1/auctions/:id/bids/:bidId', async (ctx) => {
    const buyerId = (await kit.buyerOf(ctx));
    const id = auctionId(ctx.params[0]!);
    const bidId = kit.idParam(ctx.params[1]!, BID_ID, 'bid');
    if (bidId.slice(4, 16) !== id.slice(4)) throw new AppError('NOT_FOUND', 'no such bid');
    return { status: 200, body: await bids.retract(buyerId, id, bidId) };
  }, { doc: doc.retract });
}
