/** The sales API's contract (OpenAPI): what each route of routes.ts takes and answers. */
import { COUNT, idSchema, INSTANT, LIMIT_PARAM, AFTER_PARAM, pageOf, strictObject, type RouteDoc, type Schema } from '../platform/http/doc.js';
import { PURCHASE_ID, SALE_ID, USER_ID } from '../platform/ids.js';
import { CURRENCY } from '../platform/http/validate.js';

const TAGS = ['sales'];
const SALE_PARAM = { id: { schema: idSchema(SALE_ID), description: 'The sale.' } };
const PURCHASE_PARAM = { id: { schema: idSchema(PURCHASE_ID), description: 'The purchase.' } };

const BUNDLE: Schema = strictObject({
  items: { type: 'array', minItems: 1, items: strictObject({ name: { type: 'string' }, unitPrice: COUNT, quantity: { type: 'integer', minimum: 1 } }) },
  subtotal: { ...COUNT, description: 'The items\' unitPrice x quantity, summed.' },
  discount: {
    anyOf: [
      strictObject({ type: { const: 'flat' }, amount: COUNT }),
      strictObject({ type: { const: 'percentage' }, basisPoints: { type: 'integer', minimum: 0, maximum: 10_000 } }),
      { type: 'null' },
    ],
  },
  discountAmount: { ...COUNT, description: 'Off the subtotal: a flat amount as given; a percentage rounded half up (a half minor unit to the buyer).' },
  price: { ...COUNT, description: 'subtotal - discountAmount: the sale\'s unitPrice, what one bundle is charged.' },
});

/** A sale as sales.ts `viewOf` answers it. */
export const SALE_VIEW: Schema = strictObject({
  id: idSchema(SALE_ID),
  sellerId: { anyOf: [idSchema(USER_ID), { type: 'null' }], description: 'null for a sale an operator created.' },
  name: { type: 'string' },
  sku: { type: 'string' },
  unitPrice: { ...COUNT, description: 'Minor units of `currency`; a bundle\'s computed price.' },
  currency: CURRENCY,
  stock: COUNT,
  perBuyerLimit: { type: 'integer', minimum: 1 },
  startsAt: INSTANT,
  endsAt: INSTANT,
  status: { enum: ['scheduled', 'open', 'ended', 'closed'] },
  private: { type: 'boolean', description: 'Seen and bought only by its eligible buyers (and seen by its seller and operators).' },
  bundle: { anyOf: [BUNDLE, { type: 'null' }], description: 'A bundle\'s breakdown; null for a single item.' },
  shards: { type: 'integer', minimum: 1, description: 'The Redis slots its stock is split across (1 for most sales).' },
  live: {
    anyOf: [strictObject({ stock: COUNT, available: COUNT, reserved: COUNT, sold: COUNT }), { type: 'null' }],
    description: 'The counters Redis decides with; null when Redis does not hold the sale.',
  },
});

/** A purchase as purchases.ts `viewOf` answers it. */
export const PURCHASE_VIEW: Schema = strictObject({
  purchaseId: idSchema(PURCHASE_ID),
  saleId: idSchema(SALE_ID),
  quantity: { type: 'integer', minimum: 1 },
  unitPrice: COUNT,
  amount: COUNT,
  currency: CURRENCY,
  status: { enum: ['pending', 'confirmed', 'failed', 'cancelled'] },
  reason: { type: 'string', description: 'Why it failed.' },
  cancelRequested: { type: 'boolean' },
  createdAt: INSTANT,
}, ['reason']);

const ACCEPTED: Schema = strictObject({
  purchaseId: idSchema(PURCHASE_ID),
  status: { const: 'pending' },
  statusUrl: { type: 'string', description: 'Where to follow it: `/v1/purchases/{purchaseId}`.' },
});

const ELIGIBLE: Schema = strictObject({ saleId: idSchema(SALE_ID), buyerIds: { type: 'array', items: idSchema(USER_ID), description: 'In id order.' } });

export function saleDocs(bodies: { sale: { schema: unknown }; stock: { schema: unknown }; purchase: { schema: unknown }; eligible: { schema: unknown } }) {
  const docs = {
    create: {
      summary: 'Create a sale',
      description: 'One item at `unitPrice`, or a bundle of `items` whose price (subtotal less `discount`) is computed once, stored and charged. `eligibleBuyers` makes it private. The body may be as large as the longest list of eligible buyers needs.',
      tags: TAGS, caller: 'operatorOrSeller', body: bodies.sale, idempotent: true,
      responses: { 201: { description: 'The sale, loaded for buying.', schema: SALE_VIEW } },
    },
    list: {
      summary: 'Open sales not yet ended', tags: TAGS, caller: 'optionalBuyer',
      description: 'The public ones; with `eligible=true` (a buyer\'s token required), the private sales the calling buyer may buy.',
      query: {
        limit: LIMIT_PARAM, after: AFTER_PARAM('sales', SALE_ID),
        eligible: { schema: { enum: ['true', 'false'] }, description: '`true`: the private sales you may buy instead of the public ones.' },
      },
      responses: { 200: { description: 'A page of sales, oldest first.', schema: pageOf(SALE_VIEW, idSchema(SALE_ID)) } },
    },
    get: {
      summary: 'A sale: its terms, status and live counters', tags: TAGS, params: SALE_PARAM, caller: 'optionalBuyer',
      description: 'A private sale is 404 to everyone but its eligible buyers (bearer token), its seller and operators (X-Api-Key); credentials that do not verify count as nobody\'s.',
      responses: { 200: { description: 'The sale.', schema: SALE_VIEW } },
    },
    getEligible: {
      summary: 'A private sale\'s eligible buyers', tags: TAGS, caller: 'operatorOrSeller', params: SALE_PARAM, refusals: ['CONFLICT'],
      description: 'A public sale has none (409).',
      responses: { 200: { description: 'The list.', schema: ELIGIBLE } },
    },
    setEligible: {
      summary: 'Replace a private sale\'s eligible buyers',
      description: 'The next purchase decided sees the new list (the purchase script checks it); purchases already accepted stay. A public sale has none (409). Every id must be a buyer, each once.',
      tags: TAGS, caller: 'operatorOrSeller', params: SALE_PARAM, body: bodies.eligible, refusals: ['CONFLICT'],
      responses: { 200: { description: 'The new list.', schema: ELIGIBLE } },
    },
    addStock: {
      summary: 'Add stock to a sale', tags: TAGS, caller: 'operatorOrSeller', params: SALE_PARAM, body: bodies.stock, idempotent: true,
      refusals: ['SALE_ENDED'],
      responses: { 200: { description: 'The sale with its new stock.', schema: SALE_VIEW } },
    },
    close: {
      summary: 'Close a sale early', tags: TAGS, caller: 'operatorOrSeller', params: SALE_PARAM,
      responses: { 200: { description: 'The closed sale.', schema: SALE_VIEW } },
    },
    purchase: {
      summary: 'Buy', description: 'Decided at once in Redis; settled (charged, confirmed or failed) shortly after. Only accepted answers are replayed by `Idempotency-Key`.',
      tags: TAGS, caller: 'buyer', params: SALE_PARAM, body: bodies.purchase, idempotent: true,
      refusals: ['SOLD_OUT', 'NOT_ENOUGH_STOCK', 'LIMIT_REACHED', 'PURCHASE_IN_PROGRESS', 'SALE_NOT_OPEN', 'SALE_ENDED', 'RATE_LIMITED'],
      responses: {
        202: {
          description: 'Accepted: the units are reserved for you.', schema: ACCEPTED,
          headers: { Location: { schema: { type: 'string' }, description: 'The statusUrl.', required: true } },
        },
      },
    },
    getPurchase: {
      summary: 'One of your purchases', tags: TAGS, caller: 'buyer', params: PURCHASE_PARAM,
      description: 'Anyone else\'s purchase is answered 404.',
      responses: { 200: { description: 'The purchase.', schema: PURCHASE_VIEW } },
    },
    cancelPurchase: {
      summary: 'Cancel one of your purchases', tags: TAGS, caller: 'buyer', params: PURCHASE_PARAM,
      description: 'The stock goes back; a settled purchase is refunded.',
      refusals: ['NOT_CANCELLABLE'],
      responses: { 202: { description: 'The cancellation is under way.', schema: PURCHASE_VIEW } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}
