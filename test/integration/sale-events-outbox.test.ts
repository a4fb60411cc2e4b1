/**
 * sale.created, sale.updated and sale.closed survive a broker that is away:
 * an api pointed at a port where no broker listens (the shared RabbitMQ is
 * never stopped) creates, stocks and closes a seller's sale, each change
 * answered at once and committed with its event in the Postgres outbox,
 * kept there past the old two-second give-up; once an api that reaches the
 * broker runs, the outbox is relayed with publisher confirms and the
 * seller's endpoint gets all three, signed and verified with
 * `standardwebhooks`, each once.
 */
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { boot, call, OPERATOR_KEY, sleep, testConfig, waitFor } from '../helpers/system.js';
import { startReceiver } from '../helpers/webhooks.js';
import { startApi } from '../../src/roles/api.js';
import { createLogger } from '../../src/platform/log.js';

const ENV = { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true', STAMPEDE_WEBHOOK_POLL_MS: '20', STAMPEDE_EVENT_OUTBOX_POLL_MS: '100' };
const sys = await boot(t, { api: false, env: ENV });
await sys.pool.query('DELETE FROM webhook_endpoints');
const receiver = await startReceiver(t);

t.test('a sale changed while the broker is unreachable: its events wait in Postgres, then reach the seller once', async (t) => {
  // Nothing listens on port 1: the api's broker link never connects.
  const away = testConfig({ ...ENV, STAMPEDE_AMQP_URL: 'amqp://stampede:stampede@127.0.0.1:1' });
  const api = await startApi(away, createLogger(away.STAMPEDE_LOG_LEVEL, 'api'));
  let stopped = false;
  t.teardown(() => (stopped ? undefined : api.stop()));
  const req = (key: string, method: string, path: string, body?: unknown) =>
    call(`${api.url}${path}`, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  const seller = await req(OPERATOR_KEY, 'POST', '/v1/sellers', { name: 'Offline Ltd' });
  t.equal(seller.status, 201);
  const key = seller.body.apiKey as string;
  const ep = await req(key, 'POST', '/v1/webhooks', { url: `${receiver.url}/offline`, events: ['sale.created', 'sale.updated', 'sale.closed'] });
  t.equal(ep.status, 201);
  const now = Date.now();
  const sale = await req(key, 'POST', '/v1/sales', {
    name: 'Outage drop', sku: 'OUT-1', unitPrice: 900, currency: 'EUR', stock: 4, perBuyerLimit: 1,
    startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
  });
  t.equal(sale.status, 201, 'created with the broker away');
  const saleId = sale.body.id as string;
  t.equal((await req(key, 'POST', `/v1/sales/${saleId}/stock`, { units: 3 })).status, 200, 'stocked');
  t.equal((await req(key, 'POST', `/v1/sales/${saleId}/close`)).status, 200, 'closed');

  const ids = [`${saleId}:created`, `${saleId}:stock:7`, `${saleId}:closed`];
  const waiting = async () => (await sys.pool.query<{ event_id: string }>(
    'SELECT event_id FROM event_outbox WHERE event_id = ANY($1) ORDER BY seq', [ids])).rows.map((r) => r.event_id);
  t.same(await waiting(), ids, 'each change committed with its event, in order');
  // Longer than the old announcer waited before it gave up and lost the event.
  await sleep(2_500);
  t.same(await waiting(), ids, 'still kept while the broker stays away');
  await api.stop();
  stopped = true;

  const back = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api'));
  t.teardown(() => back.stop());
  await sys.startWorker();
  await waitFor('the three events at the endpoint', async () => receiver.of('/offline').length >= 3);
  const signer = new Webhook(ep.body.secret);
  const payloads = receiver.of('/offline').map((r) => signer.verify(r.body, r.headers) as { id: string; type: string; data: Record<string, unknown> });
  t.same(payloads.map((p) => p.id).sort(), [...ids].sort(), 'each event once, every one verified');
  t.equal(payloads.find((p) => p.type === 'stampede.sale.updated.v1')!.data.stock, 7);
  t.equal(payloads.find((p) => p.type === 'stampede.sale.created.v1')!.data.sellerId, seller.body.id);
  t.same(await waiting(), [], 'the outbox is empty once the broker confirmed them');
});
