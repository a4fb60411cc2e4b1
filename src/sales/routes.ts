/** The sales API: sales (operators and sellers), reads (anyone), purchases (buyers: the hot path). */
import type { Principal } from '../platform/auth/api-keys.js';
import { PURCHASE_ID, SALE_ID } from '../platform/ids.js';
import type { HttpServer, Reply } from '../platform/http/server.js';
import type { RouteKit } from '../platform/http/route-kit.js';
import { compile, CURRENCY, DATE_TIME, MAX_AMOUNT, validate } from '../platform/http/validate.js';
import type { Purchases } from './purchases.js';
import { MAX_STOCK, type NewSale, type Sales } from './sales.js';
import { saleDocs } from './api-doc.js';

export interface SaleRouteDeps {
  sales: Sales;
  purchases: Purchases;
  maxQuantity: number;
}

export function registerSaleRoutes(http: HttpServer, kit: RouteKit, deps: SaleRouteDeps): void {
  const purchaseBody = compile<{ quantity: number }>({
    type: 'object',
    properties: { quantity: { type: 'integer', minimum: 1, maximum: deps.maxQuantity } },
    required: ['quantity'],
    additionalProperties: false,
  });
  const saleBody = compile<NewSale>({
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 200 },
      sku: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' },
      unitPrice: { type: 'integer', minimum: 0, maximum: MAX_AMOUNT },
      currency: CURRENCY,
      stock: { type: 'integer', minimum: 0, maximum: MAX_STOCK },
      perBuyerLimit: { type: 'integer', minimum: 1, maximum: deps.maxQuantity * 10 },
      startsAt: DATE_TIME,
      endsAt: DATE_TIME,
    },
    required: ['name', 'sku', 'unitPrice', 'currency', 'stock', 'perBuyerLimit', 'startsAt', 'endsAt'],
    additionalProperties: false,
  });
  const stockBody = compile<{ units: number }>({
    type: 'object',
    properties: { units: { type: 'integer', minimum: 1, maximum: MAX_STOCK } },
    required: ['units'],
    additionalProperties: false,
  });
  const sellers: Principal['role'][] = ['operator', 'seller'];
  const saleId = (value: string) => kit.idParam(value, SALE_ID, 'sale');
  const doc = saleDocs({ sale: saleBody, stock: stockBody, purchase: purchaseBody });

  http.route('post', '/v1/sales', async (ctx, raw) => {
    const p = await kit.principalOf(ctx, sellers);
    const body = validate(saleBody, raw);
    return kit.idempotent(ctx, p, body, async () => ({ status: 201, body: await deps.sales.create(body, p) }));
  }, { doc: doc.create });
  http.route('get', '/v1/sales', async (ctx) => {
    const { limit, after } = kit.pageOf(ctx, SALE_ID);
    return { status: 200, body: await deps.sales.listActive(limit, after) };
  }, { doc: doc.list });
  http.route('get', '/v1/sales/:id', async (ctx) => ({ status: 200, body: await deps.sales.get(saleId(ctx.params[0]!)) }), { doc: doc.get });
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
    const buyerId = kit.buyerOf(ctx);
    const id = saleId(ctx.params[0]!);
    const { quantity } = validate(purchaseBody, raw);
    const key = kit.idempotencyKeyOf(ctx);
    // Answered synchronously, without Redis, when this node knows the sale is sold out.
    const known = deps.purchases.refusedFromMemory(id);
    if (known) return known;
    return deps.purchases.purchase(buyerId, id, quantity, key).then((a): Reply => {
      const headers: Record<string, string> = { Location: a.statusUrl };
      if (a.replayed) headers['Idempotent-Replayed'] = 'true';
      return { status: 202, body: { purchaseId: a.purchaseId, status: a.status, statusUrl: a.statusUrl }, headers };
    });
  }, { doc: doc.purchase });
  http.route('get', '/v1/purchases/:id', async (ctx) => {
    const buyerId = kit.buyerOf(ctx);
    return { status: 200, body: await deps.purchases.get(buyerId, kit.idParam(ctx.params[0]!, PURCHASE_ID, 'purchase')) };
  }, { doc: doc.getPurchase });
  http.route('del', '/v1/purchases/:id', async (ctx) => {
    const buyerId = kit.buyerOf(ctx);
    return { status: 202, body: await deps.purchases.cancel(buyerId, kit.idParam(ctx.params[0]!, PURCHASE_ID, 'purchase')) };
  }, { doc: doc.cancelPurchase });
}
