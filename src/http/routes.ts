/** The HTTP API: every route is a plain function that throws AppError. */
import type { JSONSchemaType } from 'ajv';
import type { Redis } from 'ioredis';
import { AppError, SOLD_OUT } from '../errors.js';
import { PURCHASE_ID, SALE_ID, USER_ID } from '../ids.js';
import type { Pool } from '../db/pool.js';
import { withIdempotency } from '../db/idempotency.js';
import type { ApiKeys, Principal } from '../auth/api-keys.js';
import type { BuyerTokens } from '../auth/tokens.js';
import { createBuyers, createSeller, creditWallet, readWallet, requireBuyer, type NewBuyer } from '../domain/buyers.js';
import { newApiKey } from '../auth/api-keys.js';
import type { NewSale, Sales } from '../domain/sales.js';
import type { Purchases } from '../domain/purchases.js';
import type { HttpServer, Reply, RequestContext } from './server.js';
import { compile, CURRENCY, MAX_AMOUNT, validate } from './validate.js';
import type { OpsView } from './ops.js';
import type { Auctions } from '../domain/auctions.js';
import { deleteBuyer, type DeletedUsers } from '../domain/deletion.js';
import { registerAuctionRoutes } from './auction-routes.js';

/** What every route file shares: authentication, parameters, paging, idempotency. */
export interface RouteKit {
  buyerOf(ctx: RequestContext): string;
  principalOf(ctx: RequestContext, roles: Principal['role'][]): Promise<Principal>;
  idempotencyKeyOf(ctx: RequestContext): string | undefined;
  idParam(value: string, re: RegExp, what: string): string;
  pageOf(ctx: RequestContext, cursor: RegExp): { limit: number; after: string | undefined };
  idempotent(ctx: RequestContext, p: Principal, body: unknown, run: () => Promise<Reply>): Promise<Reply>;
}

export interface RouteDeps {
  pool: Pool;
  redis: Redis;
  tokens: BuyerTokens;
  apiKeys: ApiKeys;
  sales: Sales;
  purchases: Purchases;
  auctions: Auctions;
  deletedUsers: DeletedUsers;
  ops: OpsView;
  maxQuantity: number;
  readiness: () => Promise<{ ok: boolean; checks: Record<string, string> }>;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
const MAX_PAGE = 100;

const buyerSchema: JSONSchemaType<NewBuyer> = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    email: { type: 'string', minLength: 3, maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$', nullable: true },
  },
  required: ['name'],
  additionalProperties: false,
};

export function registerRoutes(http: HttpServer, d: RouteDeps): void {
  const purchaseBody = compile<{ quantity: number }>({
    type: 'object',
    properties: { quantity: { type: 'integer', minimum: 1, maximum: d.maxQuantity } },
    required: ['quantity'],
    additionalProperties: false,
  });
  const batchBody = compile<{ buyers: NewBuyer[] }>({
    type: 'object',
    properties: { buyers: { type: 'array', items: buyerSchema, minItems: 1, maxItems: 1000 } },
    required: ['buyers'],
    additionalProperties: false,
  });
  const buyerBody = compile(buyerSchema);
  const creditBody = compile<{ currency: string; amount: number }>({
    type: 'object',
    properties: { currency: CURRENCY, amount: { type: 'integer', minimum: 1, maximum: MAX_AMOUNT } },
    required: ['currency', 'amount'],
    additionalProperties: false,
  });
  const saleBody = compile<NewSale>({
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 200 },
      sku: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' },
      unitPrice: { type: 'integer', minimum: 0, maximum: MAX_AMOUNT },
      currency: CURRENCY,
      stock: { type: 'integer', minimum: 0, maximum: 10_000_000 },
      perBuyerLimit: { type: 'integer', minimum: 1, maximum: d.maxQuantity * 10 },
      startsAt: { type: 'string', maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?(Z|[+-]\\d{2}:\\d{2})$' },
      endsAt: { type: 'string', maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?(Z|[+-]\\d{2}:\\d{2})$' },
    },
    required: ['name', 'sku', 'unitPrice', 'currency', 'stock', 'perBuyerLimit', 'startsAt', 'endsAt'],
    additionalProperties: false,
  });
  const stockBody = compile<{ units: number }>({
    type: 'object',
    properties: { units: { type: 'integer', minimum: 1, maximum: 10_000_000 } },
    required: ['units'],
    additionalProperties: false,
  });

  // --- authentication -------------------------------------------------------
  const buyerOf = (ctx: RequestContext): string => {
    const m = /^Bearer ([A-Za-z0-9_\-.]{1,4096})$/.exec(ctx.authorization);
    if (!m) throw new AppError('UNAUTHORIZED', 'a bearer token is required', undefined, { 'WWW-Authenticate': 'Bearer' });
    const buyerId = d.tokens.verify(m[1]!);
    if (d.deletedUsers.has(buyerId)) throw new AppError('UNAUTHORIZED', 'this buyer was deleted', undefined, { 'WWW-Authenticate': 'Bearer' });
    return buyerId;
  };
  const principalOf = async (ctx: RequestContext, roles: Principal['role'][]): Promise<Principal> => {
    if (ctx.apiKey === '' || ctx.apiKey.length > 200) throw new AppError('UNAUTHORIZED', 'an X-Api-Key header is required');
    const p = await d.apiKeys.lookup(ctx.apiKey);
    if (!p) throw new AppError('UNAUTHORIZED', 'unknown API key');
    if (!roles.includes(p.role)) throw new AppError('FORBIDDEN', `this needs a ${roles.join(' or ')} key`);
    return p;
  };
  const idempotencyKeyOf = (ctx: RequestContext): string | undefined => {
    if (ctx.idempotencyKey === '') return undefined;
    if (!IDEMPOTENCY_KEY.test(ctx.idempotencyKey)) {
      throw new AppError('VALIDATION_FAILED', 'Idempotency-Key must be 1-200 printable ASCII characters', { errors: [{ path: 'header:Idempotency-Key', message: 'is invalid' }] });
    }
    return ctx.idempotencyKey;
  };
  const idParam = (value: string, re: RegExp, what: string): string => {
    if (!re.test(value)) throw new AppError('NOT_FOUND', `no such ${what}`);
    return value;
  };
  const pageOf = (ctx: RequestContext, cursor: RegExp): { limit: number; after: string | undefined } => {
    const q = new URLSearchParams(ctx.query);
    const raw = q.get('limit') ?? '50';
    const limit = Number(raw);
    if (!/^\d{1,3}$/.test(raw) || limit < 1 || limit > MAX_PAGE) {
      throw new AppError('VALIDATION_FAILED', `limit must be an integer from 1 to ${MAX_PAGE}`, { errors: [{ path: 'query:limit', message: 'out of range' }] });
    }
    const after = q.get('after') ?? undefined;
    if (after !== undefined && !cursor.test(after)) throw new AppError('VALIDATION_FAILED', 'after is not a cursor this list gave', { errors: [{ path: 'query:after', message: 'is invalid' }] });
    return { limit, after };
  };
  /** Operator/seller creations honour Idempotency-Key through Postgres. */
  const idempotent = async (
    ctx: RequestContext, p: Principal, body: unknown, run: () => Promise<Reply>,
    stored?: (a: { status: number; body: unknown }) => { status: number; body: unknown },
  ): Promise<Reply> => {
    const key = idempotencyKeyOf(ctx);
    if (!key) return run();
    const scope = `${p.role}:${p.userId ?? '-'}:${ctx.method}:${ctx.url}`;
    const answer = await withIdempotency(d.pool, scope, key, body, async () => {
      const r = await run();
      return { status: r.status, body: r.body };
    }, stored);
    return { status: answer.status, body: answer.body, headers: answer.replayed ? { 'Idempotent-Replayed': 'true' } : undefined };
  };

  // --- health ---------------------------------------------------------------
  http.route('get', '/healthz', () => ({ status: 200, body: { status: 'ok' } }));
  http.route('get', '/readyz', async () => {
    const r = await d.readiness();
    return { status: r.ok ? 200 : 503, body: { status: r.ok ? 'ready' : 'not ready', checks: r.checks } };
  });

  // --- buyers and wallets (operators) ---------------------------------------
  http.route('post', '/v1/buyers', async (ctx, raw) => {
    const p = await principalOf(ctx, ['operator']);
    const body = validate(buyerBody, raw);
    return idempotent(ctx, p, body, async () => ({ status: 201, body: (await createBuyers(d.pool, [body]))[0] }));
  });
  http.route('post', '/v1/buyers/batch', async (ctx, raw) => {
    const p = await principalOf(ctx, ['operator']);
    const body = validate(batchBody, raw);
    return idempotent(ctx, p, body, async () => ({ status: 201, body: { buyers: await createBuyers(d.pool, body.buyers) } }));
  });
  http.route('post', '/v1/buyers/:id/credits', async (ctx, raw) => {
    const p = await principalOf(ctx, ['operator']);
    const userId = idParam(ctx.params[0]!, USER_ID, 'buyer');
    const body = validate(creditBody, raw);
    const key = idempotencyKeyOf(ctx);
    return idempotent(ctx, p, body, async () => {
      const ref = `credit:${key ?? `${Date.now()}:${Math.random().toString(36).slice(2)}`}:${userId}`;
      const r = await creditWallet(d.pool, userId, body.currency, body.amount, ref);
      return { status: 201, body: { userId, currency: body.currency, credited: body.amount, balance: r.balance } };
    });
  });
  http.route('get', '/v1/buyers/:id/wallet', async (ctx) => {
    await principalOf(ctx, ['operator']);
    const userId = idParam(ctx.params[0]!, USER_ID, 'buyer');
    await requireBuyer(d.pool, userId);
    return { status: 200, body: await readWallet(d.pool, userId) };
  });
  http.route('post', '/v1/sellers', async (ctx, raw) => {
    const p = await principalOf(ctx, ['operator']);
    const body = validate(buyerBody, raw);
    return idempotent(ctx, p, body, async () => {
      const seller = await createSeller(d.pool, body.name, body.email, async (userId) => {
        const key = newApiKey('seller');
        await d.apiKeys.store(key, 'seller', userId, `seller ${userId}`);
        return key;
      });
      return { status: 201, body: seller };
    }, ({ status, body: first }) => {
      // The key is shown once; a replay names the seller, never the key.
      const { apiKey: _shownOnce, ...seller } = first as { apiKey: string };
      return { status, body: { ...seller, apiKey: null } };
    });
  });
  http.route('del', '/v1/buyers/:id', async (ctx) => {
    await principalOf(ctx, ['operator']);
    const userId = idParam(ctx.params[0]!, USER_ID, 'buyer');
    const deletion = await deleteBuyer(d.pool, d.redis, d.auctions, userId);
    d.deletedUsers.add(userId);
    return { status: 200, body: deletion };
  }, { body: false });
  http.route('get', '/v1/wallet', async (ctx) => ({ status: 200, body: await readWallet(d.pool, buyerOf(ctx)) }));

  // --- sales (operators and sellers) ----------------------------------------
  http.route('post', '/v1/sales', async (ctx, raw) => {
    const p = await principalOf(ctx, ['operator', 'seller']);
    const body = validate(saleBody, raw);
    return idempotent(ctx, p, body, async () => ({ status: 201, body: await d.sales.create(body, p) }));
  });
  http.route('get', '/v1/sales', async (ctx) => {
    const { limit, after } = pageOf(ctx, SALE_ID);
    return { status: 200, body: await d.sales.listActive(limit, after) };
  });
  http.route('get', '/v1/sales/:id', async (ctx) => ({ status: 200, body: await d.sales.get(idParam(ctx.params[0]!, SALE_ID, 'sale')) }));
  http.route('post', '/v1/sales/:id/stock', async (ctx, raw) => {
    const p = await principalOf(ctx, ['operator', 'seller']);
    const saleId = idParam(ctx.params[0]!, SALE_ID, 'sale');
    const body = validate(stockBody, raw);
    return idempotent(ctx, p, body, async () => ({ status: 200, body: await d.sales.addStock(saleId, body.units, p) }));
  });
  http.route('post', '/v1/sales/:id/close', async (ctx) => {
    const p = await principalOf(ctx, ['operator', 'seller']);
    return { status: 200, body: await d.sales.close(idParam(ctx.params[0]!, SALE_ID, 'sale'), p) };
  }, { body: false });

  // --- purchases (buyers): the hot path --------------------------------------
  http.route('post', '/v1/sales/:id/purchases', (ctx, raw) => {
    const buyerId = buyerOf(ctx);
    const saleId = idParam(ctx.params[0]!, SALE_ID, 'sale');
    const { quantity } = validate(purchaseBody, raw);
    const key = idempotencyKeyOf(ctx);
    // Answered synchronously, without Redis, when this node knows the sale is sold out.
    if (d.purchases.isKnownSoldOut(saleId)) return SOLD_OUT;
    return d.purchases.purchase(buyerId, saleId, quantity, key).then((a): Reply => {
      const headers: Record<string, string> = { Location: a.statusUrl };
      if (a.replayed) headers['Idempotent-Replayed'] = 'true';
      return { status: 202, body: { purchaseId: a.purchaseId, status: a.status, statusUrl: a.statusUrl }, headers };
    });
  });
  http.route('get', '/v1/purchases/:id', async (ctx) => {
    const buyerId = buyerOf(ctx);
    return { status: 200, body: await d.purchases.get(buyerId, idParam(ctx.params[0]!, PURCHASE_ID, 'purchase')) };
  });
  http.route('del', '/v1/purchases/:id', async (ctx) => {
    const buyerId = buyerOf(ctx);
    return { status: 202, body: await d.purchases.cancel(buyerId, idParam(ctx.params[0]!, PURCHASE_ID, 'purchase')) };
  });

  // --- operators -------------------------------------------------------------
  http.route('get', '/v1/ops/queues', async (ctx) => {
    await principalOf(ctx, ['operator']);
    return { status: 200, body: await d.ops.queues() };
  });

  registerAuctionRoutes(http, d, { buyerOf, principalOf, idempotencyKeyOf, idParam, pageOf, idempotent });

  http.fallback();
}
