/** The sales API: sales (operators and sellers), reads (anyone), purchases (buyers: the hot path). */
import type { Principal } from '../platform/auth/api-keys.js';
import { PURCHASE_ID, SALE_ID } from '../platform/ids.js';
import { MAX_SHARDS } from './shards.js';
import type { HttpServer, Reply } from '../platform/http/server.js';
import type { RouteKit } from '../platform/http/route-kit.js';
import { AppError } from '../platform/errors.js';
import { compile, compileSchema, CURRENCY, DATE_TIME, MAX_AMOUNT, validate } from '../platform/http/validate.js';
import { USER_ID } from '../platform/ids.js';
import type { Purchases } from './purchases.js';
import { MAX_STOCK, type NewSale, type Sales, type Viewer } from './sales.js';
import { FULL_BASIS_POINTS, MAX_ITEM_QUANTITY } from './bundles.js';
import { saleDocs } from './api-doc.js';

export interface SaleRouteDeps {
  sales: Sales;
  purchases: Purchases;
  maxQuantity: number;
  /** Most items in one bundle (STAMPEDE_MAX_BUNDLE_ITEMS). */
  maxBundleItems: number;
  /** Most buyers on one private sale's list (STAMPEDE_MAX_ELIGIBLE_BUYERS). */
  maxEligibleBuyers: number;
  /** The server's body limit: bodies that may carry a list of buyers get room for the longest list besides. */
  maxBodyBytes: number;
}

/** A JSON buyer id with its quotes and comma (`"usr_…",`), and room for spaces around it. */
const BYTES_PER_LISTED_ID = 24;

export function registerSaleRoutes(http: HttpServer, kit: RouteKit, deps: SaleRouteDeps): void {
  const purchaseBody = compile<{ quantity: number }>({
    type: 'object',
    properties: { quantity: { type: 'integer', minimum: 1, maximum: deps.maxQuantity } },
    required: ['quantity'],
    additionalProperties: false,
  });
  const buyerIds = (minItems: number) => ({
    type: 'array', minItems, maxItems: deps.maxEligibleBuyers, items: { type: 'string', pattern: USER_ID.source },
  });
  const saleBody = compileSchema<NewSale>({
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 200 },
      sku: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' },
      unitPrice: { type: 'integer', minimum: 0, maximum: MAX_AMOUNT, description: 'Minor units; required unless `items` makes it a bundle (whose price is computed).' },
      currency: CURRENCY,
      stock: { type: 'integer', minimum: 0, maximum: MAX_STOCK },
      perBuyerLimit: { type: 'integer', minimum: 1, maximum: deps.maxQuantity * 10 },
      startsAt: DATE_TIME,
      endsAt: DATE_TIME,
      items: {
        type: 'array', minItems: 1, maxItems: deps.maxBundleItems,
        description: 'A bundle: these items sold together as one unit, at their subtotal less `discount`.',
        items: {
          type: 'object', additionalProperties: false, required: ['name', 'unitPrice', 'quantity'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
            unitPrice: { type: 'integer', minimum: 0, maximum: MAX_AMOUNT },
            quantity: { type: 'integer', minimum: 1, maximum: MAX_ITEM_QUANTITY },
          },
        },
      },
      discount: {
        type: 'object', additionalProperties: false, required: ['type'],
        description: 'A bundle only: `{"type":"flat","amount"}` (at most the subtotal) or `{"type":"percentage","basisPoints"}` (0–10,000; the amount off is rounded half up, a half minor unit to the buyer).',
        properties: {
          type: { enum: ['flat', 'percentage'] },
          amount: { type: 'integer', minimum: 0, maximum: MAX_AMOUNT },
          basisPoints: { type: 'integer', minimum: 0, maximum: FULL_BASIS_POINTS },
        },
      },
      eligibleBuyers: { ...buyerIds(1), description: 'Makes the sale private: only these buyers may see and buy it.' },
      shards: {
        type: 'integer', minimum: 1, maximum: MAX_SHARDS,
        description: 'A hot sale: its stock split across this many Redis slots, each deciding its buyers on its own core (default 1; a private sale has 1).',
      },
    },
    required: ['name', 'sku', 'currency', 'stock', 'perBuyerLimit', 'startsAt', 'endsAt'],
    additionalProperties: false,
  });
  const eligibleBody = compileSchema<{ buyerIds: string[] }>({
    type: 'object',
    properties: { buyerIds: { ...buyerIds(0), description: 'The whole new list (it replaces the old one); empty: nobody may buy.' } },
    required: ['buyerIds'],
    additionalProperties: false,
  });
  const listBodyBytes = deps.maxBodyBytes + deps.maxEligibleBuyers * BYTES_PER_LISTED_ID;
  const stockBody = compile<{ units: number }>({
    type: 'object',
    properties: { units: { type: 'integer', minimum: 1, maximum: MAX_STOCK } },
    required: ['units'],
    additionalProperties: false,
  });
  const sellers: Principal['role'][] = ['operator', 'seller'];
  const saleId = (value: string) => kit.idParam(value, SALE_ID, 'sale');
  const doc = saleDocs({ sale: saleBody, stock: stockBody, purchase: purchaseBody, eligible: eligibleBody });
  /** Who calls, read only when a private sale asks: an API key first, else a bearer token, else nobody. */
  const viewerOf = (ctx: Parameters<typeof kit.buyerOf>[0]) => async (): Promise<Viewer> => {
    if (ctx.apiKey !== '') return { principal: await kit.principalOf(ctx, sellers) };
    if (ctx.authorization !== '') return { buyerId: (await kit.buyerOf(ctx)) };
    return null;
  };

  http.route('post', '/v1/sales', async (ctx, raw) => {
    const p = await kit.principalOf(ctx, sellers);
    const body = validate(saleBody, raw);
    return kit.idempotent(ctx, p, body, async () => ({ status: 201, body: await deps.sales.create(body, p) }));
  }, { doc: doc.create, maxBodyBytes: listBodyBytes });
  http.route('get', '/v1/sales', async (ctx) => {
    const eligible = new URLSearchParams(ctx.query).get('eligible');
    if (eligible !== null && eligible !== 'true' && eligible !== 'false') throw AppError.invalid('query:eligible', 'is invalid', 'eligible must be true or false');
    const buyerId = eligible === 'true' ? (await kit.buyerOf(ctx)) : undefined;
    const { limit, after } = kit.pageOf(ctx, SALE_ID);
    return { status: 200, body: buyerId ? await deps.sales.listEligible(buyerId, limit, after) : await deps.sales.listActive(limit, after) };
  }, { doc: doc.list });
  http.route('get', '/v1/sales/:id', async (ctx) => {
    const id = saleId(ctx.params[0]!);
    return { status: 200, body: await deps.sales.get(id, viewerOf(ctx)) };
  }, { doc: doc.get });
  http.route('get', '/v1/sales/:id/eligible-buyers', async (ctx) => {
    const p = await kit.principalOf(ctx, sellers);
    return { status: 200, body: await deps.sales.eligibleBuyers(saleId(ctx.params[0]!), p) };
  }, { doc: doc.getEligible });
  http.route('put', '/v1/sales/:id/eligible-buyers', async (ctx, raw) => {
    const p = await kit.principalOf(ctx, sellers);
    const id = saleId(ctx.params[0]!);
    const { buyerIds } = validate(eligibleBody, raw);
    return { status: 200, body: await deps.sales.setEligibleBuyers(id, buyerIds, p) };
  }, { doc: doc.setEligible, maxBodyBytes: listBodyBytes });
  http.route('post', '/v1/sales/:id/stock', async (ctx, raw) => {
    const p = await kit.principalOf(ctx, sellers);
    const id = saleId(ctx.params[0]!);
    const body = validate(stockBody, raw);
    return kit.idempotent(ctx, p, body, async () => ({ status: 200, body: await deps.sales.addStock(id, body.units, p) }));
  }, { doc: doc.addStock });
  http.route('post', '/v1/sales/:id/close', async (ctx) => {
    const p = await kit.principalOf(ctx, sellers);
    return { status: 200, body: await deps.sales.close(saleId(ctx.params[0]!), p) };
  }, { body: false, doc: doc.close });

  http.route('post', '/v1/sales/:id/purchases', (ctx, raw) => {
    const purchase = (buyerId: string): AppError | Promise<Reply> => {
      const id = saleId(ctx.params[0]!);
      const { quantity } = validate(purchaseBody, raw);
      const key = kit.idempotencyKeyOf(ctx);
      // Answered synchronously, without Redis, when this node knows the sale is sold out (unless it may be a replay).
      const known = deps.purchases.refusedFromMemory(id, key);
      if (known) return known;
      return deps.purchases.purchase(buyerId, id, quantity, key).then((a): Reply => {
        const headers: Record<string, string> = { Location: a.statusUrl };
        if (a.replayed) headers['Idempotent-Replayed'] = 'true';
        return { status: 202, body: { purchaseId: a.purchaseId, status: a.status, statusUrl: a.statusUrl }, headers };
      });
    };
    // A buyer this node knows buys at once (a refusal from memory is returned, not thrown: the sold-out storm's
    // path); one it does not waits for the lookup, and a refusal then rejects the answer's promise.
    const buyer = kit.buyerOf(ctx);
    if (typeof buyer === 'string') return purchase(buyer);
    return buyer.then((buyerId) => {
      const answer = purchase(buyerId);
      if (answer instanceof AppError) throw answer;
      return answer;
    });
  }, { doc: doc.purchase });
  http.route('get', '/v1/purchases/:id', async (ctx) => {
    const buyerId = (await kit.buyerOf(ctx));
    return { status: 200, body: await deps.purchases.get(buyerId, kit.idParam(ctx.params[0]!, PURCHASE_ID, 'purchase')) };
  }, { doc: doc.getPurchase });
  http.route('del', '/v1/purchases/:id', async (ctx) => {
    const buyerId = (await kit.buyerOf(ctx));
    return { status: 202, body: await deps.purchases.cancel(buyerId, kit.idParam(ctx.params[0]!, PURCHASE_ID, 'purchase')) };
  }, { doc: doc.cancelPurchase });
}
