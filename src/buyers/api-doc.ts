/** The buyers API's contract (OpenAPI): what each route of routes.ts takes and answers. */
import { COUNT, idSchema, INSTANT, strictObject, type RouteDoc, type Schema } from '../platform/http/doc.js';
import { USER_ID } from '../platform/ids.js';
import { CURRENCY } from '../platform/http/validate.js';

const BUYER_PARAM = { id: { schema: idSchema(USER_ID), description: 'The buyer.' } };

export const BUYER: Schema = strictObject({ id: idSchema(USER_ID), name: { type: 'string' }, email: { type: ['string', 'null'] }, createdAt: INSTANT });

export const WALLET: Schema = strictObject({
  userId: idSchema(USER_ID),
  balances: { type: 'array', items: strictObject({ currency: CURRENCY, balance: { ...COUNT, description: 'Minor units.' } }) },
});

export function buyerDocs(bodies: { buyer: { schema: unknown }; batch: { schema: unknown }; credit: { schema: unknown } }) {
  const docs = {
    create: {
      summary: 'Create a buyer', tags: ['buyers'], caller: 'operator', body: bodies.buyer, idempotent: true, refusals: ['CONFLICT'],
      responses: { 201: { description: 'The buyer.', schema: BUYER } },
    },
    batch: {
      summary: 'Create up to 1,000 buyers', tags: ['buyers'], caller: 'operator', body: bodies.batch, idempotent: true, refusals: ['CONFLICT'],
      responses: { 201: { description: 'The buyers, in the order sent.', schema: strictObject({ buyers: { type: 'array', items: BUYER } }) } },
    },
    credit: {
      summary: 'Credit a buyer\'s wallet', tags: ['buyers'], caller: 'operator', params: BUYER_PARAM, body: bodies.credit, idempotent: true,
      responses: {
        201: {
          description: 'Credited.',
          schema: strictObject({ userId: idSchema(USER_ID), currency: CURRENCY, credited: { type: 'integer', minimum: 1 }, balance: COUNT }),
        },
      },
    },
    wallet: {
      summary: 'A buyer\'s balances', tags: ['buyers'], caller: 'operator', params: BUYER_PARAM,
      responses: { 200: { description: 'The wallet.', schema: WALLET } },
    },
    createSeller: {
      summary: 'Create a seller', description: 'The answer carries the seller\'s API key this once; a replay shows `apiKey: null`.',
      tags: ['sellers'], caller: 'operator', body: bodies.buyer, idempotent: true, refusals: ['CONFLICT'],
      responses: {
        201: {
          description: 'The seller and its key.',
          schema: strictObject({ ...(BUYER.properties as Record<string, Schema>), apiKey: { type: ['string', 'null'] } }),
        },
      },
    },
    delete: {
      summary: 'Delete a buyer', description: 'Bids in open auctions retracted, pending purchases cancelled, tokens refused, history kept under an anonymous name.',
      tags: ['buyers'], caller: 'operator', params: BUYER_PARAM,
      responses: {
        200: {
          description: 'Deleted (again: the same).',
          schema: strictObject({ userId: idSchema(USER_ID), deletedAt: INSTANT, retractedBids: COUNT, cancelledPurchases: COUNT }),
        },
      },
    },
    ownWallet: {
      summary: 'Your balances', tags: ['buyers'], caller: 'buyer',
      responses: { 200: { description: 'Your wallet.', schema: WALLET } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}
