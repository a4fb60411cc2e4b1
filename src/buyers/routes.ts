/** Buyers, sellers and wallets (operators), and a buyer's own wallet. */
import type { JSONSchemaType } from 'ajv';
import type { Redis } from 'ioredis';
import { USER_ID } from '../platform/ids.js';
import type { Pool } from '../platform/db/pool.js';
import { newApiKey, type ApiKeys } from '../platform/auth/api-keys.js';
import type { HttpServer } from '../platform/http/server.js';
import { shownOnce, type RouteKit } from '../platform/http/route-kit.js';
import { compile, CURRENCY, MAX_AMOUNT, validate } from '../platform/http/validate.js';
import type { Bids } from '../auctions/bids.js';
import { createBuyers, createSeller, creditWallet, readWallet, requireBuyer, type NewBuyer } from './buyers.js';
import { deleteBuyer, type DeletedUsers } from './deletion.js';
import type { KnownBuyers } from './known-buyers.js';
import { buyerDocs } from './api-doc.js';

export interface BuyerRouteDeps {
  pool: Pool;
  redis: Redis;
  apiKeys: ApiKeys;
  bids: Bids;
  deletedUsers: DeletedUsers;
  knownBuyers: KnownBuyers;
}

const buyerSchema: JSONSchemaType<NewBuyer> = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    email: { type: 'string', minLength: 3, maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$', nullable: true },
  },
  required: ['name'],
  additionalProperties: false,
};

export function registerBuyerRoutes(http: HttpServer, k: RouteKit, d: BuyerRouteDeps): void {
  const buyerBody = compile(buyerSchema);
  const batchBody = compile<{ buyers: NewBuyer[] }>({
    type: 'object',
    properties: { buyers: { type: 'array', items: buyerSchema, minItems: 1, maxItems: 1000 } },
    required: ['buyers'],
    additionalProperties: false,
  });
  const creditBody = compile<{ currency: string; amount: number }>({
    type: 'object',
    properties: { currency: CURRENCY, amount: { type: 'integer', minimum: 1, maximum: MAX_AMOUNT } },
    required: ['currency', 'amount'],
    additionalProperties: false,
  });
  const doc = buyerDocs({ buyer: buyerBody, batch: batchBody, credit: creditBody });

  http.route('post', '/v1/buyers', async (ctx, raw) => {
    const p = await k.principalOf(ctx, ['operator']);
    const body = validate(buyerBody, raw);
    return k.idempotent(ctx, p, body, async () => ({ status: 201, body: d.knownBuyers.addAll(await createBuyers(d.pool, [body]))[0] }));
  }, { doc: doc.create });
  http.route('post', '/v1/buyers/batch', async (ctx, raw) => {
    const p = await k.principalOf(ctx, ['operator']);
    const body = validate(batchBody, raw);
    return k.idempotent(ctx, p, body, async () => ({ status: 201, body: { buyers: d.knownBuyers.addAll(await createBuyers(d.pool, body.buyers)) } }));
  }, { doc: doc.batch });
  http.route('post', '/v1/buyers/:id/credits', async (ctx, raw) => {
    const p = await k.principalOf(ctx, ['operator']);
    const userId = k.idParam(ctx.params[0]!, USER_ID, 'buyer');
    const body = validate(creditBody, raw);
    const key = k.idempotencyKeyOf(ctx);
    return k.idempotent(ctx, p, body, async () => {
      const ref = `credit:${key ?? `${Date.now()}:${Math.random().toString(36).slice(2)}`}:${userId}`;
      const r = await creditWallet(d.pool, userId, body.currency, body.amount, ref);
      return { status: 201, body: { userId, currency: body.currency, credited: body.amount, balance: r.balance } };
    });
  }, { doc: doc.credit });
  http.route('get', '/v1/buyers/:id/wallet', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    const userId = k.idParam(ctx.params[0]!, USER_ID, 'buyer');
    await requireBuyer(d.pool, userId);
    return { status: 200, body: await readWallet(d.pool, userId) };
  }, { doc: doc.wallet });
  http.route('post', '/v1/sellers', async (ctx, raw) => {
    const p = await k.principalOf(ctx, ['operator']);
    const body = validate(buyerBody, raw);
    return k.idempotent(ctx, p, body, async () => {
      const seller = await createSeller(d.pool, body.name, body.email, async (userId) => {
        const key = newApiKey('seller');
        await d.apiKeys.store(key, 'seller', userId, `seller ${userId}`);
        return key;
      });
      return { status: 201, body: seller };
    }, shownOnce('apiKey'));
  }, { doc: doc.createSeller });
  http.route('del', '/v1/buyers/:id', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    const userId = k.idParam(ctx.params[0]!, USER_ID, 'buyer');
    const deletion = await deleteBuyer(d.pool, d.redis, d.bids, userId);
    d.deletedUsers.add(userId);
    return { status: 200, body: deletion };
  }, { body: false, doc: doc.delete });
  http.route('get', '/v1/wallet', async (ctx) => ({ status: 200, body: await readWallet(d.pool, (await k.buyerOf(ctx))) }), { doc: doc.ownWallet });
}
