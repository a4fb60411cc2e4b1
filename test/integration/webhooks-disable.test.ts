/**
 * An endpoint failing without a success for STAMPEDE_WEBHOOK_DISABLE_AFTER_MS
 * (compressed here to 1 ms: two failures in a row) is disabled and its
 * seller told in their notifications inbox; a success in between ends the
 * streak, so an endpoint that fails now and then stays enabled. Enabling it
 * again resumes its pending messages. What happened while it was disabled
 * is not lost: its messages are made failed and unsent, and `recover` sends
 * them once the seller is back.
 */
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { boot, call, waitFor } from '../helpers/system.js';
import { confirmedEvent, newSeller, publishEvents, startReceiver } from '../helpers/webhooks.js';
import { startWorker } from '../../src/roles/worker.js';
import { createLogger } from '../../src/platform/log.js';
import { Sales } from '../../src/sales/sales.js';
import { newPurchaseId } from '../../src/platform/ids.js';

const sys = await boot(t, {
  env: {
    STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true', STAMPEDE_WEBHOOK_RETRY_SCHEDULE_MS: '0,30,30,30,30,30', STAMPEDE_WEBHOOK_DISABLE_AFTER_MS: '1',
    STAMPEDE_WEBHOOK_POLL_MS: '20', STAMPEDE_WORKER_QUEUES: 'webhooks',
  },
});
await sys.pool.query('DELETE FROM webhook_endpoints');
const worker = await startWorker(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'worker'));
t.teardown(() => worker.stop());
const receiver = await startReceiver(t);
const seller = await newSeller(sys, 'Grace');
const now = Date.now();
const sale = await new Sales(sys.pool, sys.redis).create({
  name: 'Drop', sku: 'D', unitPrice: 100, currency: 'EUR', stock: 5, perBuyerLimit: 1, startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
}, { role: 'seller', userId: seller.id });
const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 0 });
const as = (method: string, path: string, body?: unknown) =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': seller.key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
const register = async (path: string) => (await as('POST', '/v1/webhooks', { url: `${receiver.url}${path}`, events: ['purchase.confirmed'] })).body as { id: string };
const inbox = async () => (await call(`${sys.url}/v1/notifications`, { headers: { authorization: `Bearer ${sys.token(seller.id)}` } })).body.items as
  { title: string; body: string; data: { webhookId?: string } }[];

t.test('failing without a success: disabled, and the seller told once', async (t) => {
  const ep = await register('/down');
  receiver.answer('/down', () => ({ status: 500 }));
  await publishEvents(sys.cfg, [confirmedEvent(sale.id, buyer!, newPurchaseId(sale.id))]);
  await waitFor('the endpoint disabled', async () => (await as('GET', `/v1/webhooks/${ep.id}`)).body.enabled === false);
  const view = (await as('GET', `/v1/webhooks/${ep.id}`)).body;
  t.equal(view.disabledReason, 'failing');
  t.ok(view.failingSince, 'with the start of its streak');
  const told = await waitFor('the seller told', async () => (await inbox()).filter((n) => n.data.webhookId === ep.id));
  t.equal(told.length, 1, 'one notification');
  t.match(told[0]!.title, /webhook endpoint was disabled/);
  t.match(told[0]!.body, new RegExp(`${receiver.url}/down`));
  const sent = receiver.of('/down').length;
  t.equal(sent, 2, 'it took two failures in a row (the streak outlived 1 ms)');
  const [d] = (await as('GET', `/v1/webhooks/${ep.id}/deliveries`)).body.items;
  t.equal(d.status, 'pending', 'its message waits, neither sent nor failed');

  receiver.answer('/down', () => ({ status: 200 }));
  const enabled = await as('PATCH', `/v1/webhooks/${ep.id}`, { enabled: true });
  t.equal(enabled.body.enabled, true);
  t.equal(enabled.body.failingSince, null, 'enabling ends the streak');
  await waitFor('the message delivered once enabled', async () => (await as('GET', `/v1/webhooks/${ep.id}/deliveries`)).body.items[0].status === 'succeeded');
  t.equal(new Set(receiver.of('/down').map((r) => r.headers['webhook-id'])).size, 1, 'the same message');
});

t.test('a success in between ends the streak: an endpoint that fails now and then stays enabled', async (t) => {
  const ep = await register('/flaky');
  receiver.answer('/flaky', (n) => (n % 2 === 1 ? { status: 503 } : { status: 200 }));
  for (let i = 0; i < 3; i++) {
    await publishEvents(sys.cfg, [confirmedEvent(sale.id, buyer!, newPurchaseId(sale.id))]);
    await waitFor(`delivery ${i + 1}`, async () => receiver.of('/flaky').length === 2 * (i + 1));
  }
  await waitFor('the last recorded', async () => (await as('GET', `/v1/webhooks/${ep.id}/deliveries?status=succeeded`)).body.items.length === 3);
  const view = (await as('GET', `/v1/webhooks/${ep.id}`)).body;
  t.equal(view.enabled, true, 'still enabled after three failures, each followed by a success');
  t.equal(view.failingSince, null);
  t.notOk((await inbox()).some((n) => n.data.webhookId === ep.id), 'and its seller was not told');
});

t.test('events while an endpoint was disabled: made failed and unsent; enabled again, recover sends them, signed', async (t) => {
  const r = await as('POST', '/v1/webhooks', { url: `${receiver.url}/paused`, events: ['purchase.confirmed'] });
  const ep = r.body as { id: string; secret: string };
  const since = new Date().toISOString();
  t.equal((await as('PATCH', `/v1/webhooks/${ep.id}`, { enabled: false })).body.enabled, false);
  const events = [0, 1].map(() => confirmedEvent(sale.id, buyer!, newPurchaseId(sale.id)));
  await publishEvents(sys.cfg, events);
  const made = await waitFor('both messages made', async () => {
    const items = (await as('GET', `/v1/webhooks/${ep.id}/deliveries`)).body.items as { id: string; eventId: string; status: string; attempts: unknown[] }[];
    return items.length === 2 && items;
  });
  t.same(made.map((d) => [d.status, d.attempts.length]), [['failed', 0], ['failed', 0]], 'failed, with no attempt');
  t.same(made.map((d) => d.eventId).sort(), events.map((e) => e.id).sort());
  t.equal(receiver.of('/paused').length, 0, 'nothing sent while disabled');

  t.equal((await as('PATCH', `/v1/webhooks/${ep.id}`, { enabled: true })).body.enabled, true);
  const recovered = await as('POST', `/v1/webhooks/${ep.id}/recover`, { since });
  t.same(recovered.body, { recovered: 2 });
  await waitFor('both delivered', async () => receiver.of('/paused').length >= 2);
  const signer = new Webhook(ep.secret);
  const got = receiver.of('/paused').map((x) => ({ id: x.headers['webhook-id'], payload: signer.verify(x.body, x.headers) as { id: string } }));
  t.same(got.map((g) => g.payload.id).sort(), events.map((e) => e.id).sort(), 'each event, verified');
  t.same(got.map((g) => g.id).sort(), made.map((d) => d.id).sort(), 'under the ids of the messages made while it was disabled');
});
