/**
 * The whole path, every role real: a seller's sale created, stocked and
 * closed over HTTP, and a buyer's purchase accepted by the Lua script,
 * relayed from the outbox and settled, reach the seller's endpoint as
 * sale.created, purchase.accepted, purchase.confirmed, sale.updated and
 * sale.closed, each signed and verified as a receiver would, each once.
 */
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { boot, call, waitFor } from '../helpers/system.js';
import { newSeller, startReceiver } from '../helpers/webhooks.js';

const sys = await boot(t, { relay: true, env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true', STAMPEDE_WEBHOOK_POLL_MS: '20' } });
await sys.pool.query('DELETE FROM webhook_endpoints');
await sys.startWorker();
const receiver = await startReceiver(t);
const seller = await newSeller(sys, 'Linus');
const as = (method: string, path: string, body?: unknown) =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': seller.key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

t.test('a sale and a purchase, told to the seller\'s endpoint as they happen', async (t) => {
  const ep = await as('POST', '/v1/webhooks', {
    url: `${receiver.url}/shop`, events: ['sale.created', 'sale.updated', 'sale.closed', 'purchase.accepted', 'purchase.confirmed'],
  });
  t.equal(ep.status, 201);
  const now = Date.now();
  const sale = await as('POST', '/v1/sales', {
    name: 'Flow drop', sku: 'FLOW-1', unitPrice: 1500, currency: 'EUR', stock: 3, perBuyerLimit: 1,
    startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
  });
  t.equal(sale.status, 201);
  const [buyer] = await sys.createBuyers(1);
  const bought = await sys.purchase(buyer!, sale.body.id);
  t.equal(bought.status, 202);
  await sys.drained(sale.body.id);
  t.equal((await as('POST', `/v1/sales/${sale.body.id}/stock`, { units: 2 })).status, 200);
  t.equal((await as('POST', `/v1/sales/${sale.body.id}/close`)).status, 200);
  const wanted = ['stampede.sale.created.v1', 'stampede.purchase.accepted.v1', 'stampede.purchase.confirmed.v1', 'stampede.sale.updated.v1', 'stampede.sale.closed.v1'];
  await waitFor('every event at the endpoint', async () => receiver.of('/shop').length >= wanted.length);
  const payloads = receiver.of('/shop').map((r) => new Webhook(ep.body.secret).verify(r.body, r.headers) as { type: string; data: Record<string, unknown> });
  t.same(payloads.map((p) => p.type).sort(), [...wanted].sort(), 'each event once, every one verified');
  const byType = new Map(payloads.map((p) => [p.type, p.data]));
  t.equal(byType.get('stampede.sale.created.v1')!.sellerId, seller.id);
  t.equal(byType.get('stampede.sale.updated.v1')!.stock, 5, 'the stock after the change');
  t.equal(byType.get('stampede.purchase.accepted.v1')!.purchaseId, bought.body.purchaseId);
  t.equal(byType.get('stampede.purchase.confirmed.v1')!.amount, 1500);
  t.equal(new Set(receiver.of('/shop').map((r) => r.headers['webhook-id'])).size, wanted.length, 'one message each');
});
