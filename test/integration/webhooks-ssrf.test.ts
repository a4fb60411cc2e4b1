/**
 * SSRF, with STAMPEDE_WEBHOOK_ALLOW_PRIVATE off: a URL naming or resolving
 * to a loopback, private, link-local or metadata address is refused at
 * registration, and at delivery (DNS checked again: an endpoint whose name
 * now resolves to loopback) before any packet leaves; http is refused in
 * production. The only traffic these tests could send goes to a loopback
 * receiver, which must receive nothing.
 */
import t from 'tap';
import { boot, call, waitFor } from '../helpers/system.js';
import { problem } from '../helpers/problem.js';
import { confirmedEvent, newSeller, publishEvents, startReceiver } from '../helpers/webhooks.js';
import { startWorker } from '../../src/roles/worker.js';
import { createLogger } from '../../src/platform/log.js';
import { Sales } from '../../src/sales/sales.js';
import { newPurchaseId } from '../../src/platform/ids.js';
import { WebhookEndpoints } from '../../src/webhooks/endpoints.js';
import { refusalOf } from '../../src/webhooks/ssrf.js';

const sys = await boot(t, { env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'false', STAMPEDE_WORKER_QUEUES: 'webhooks', STAMPEDE_WEBHOOK_POLL_MS: '20' } });
await sys.pool.query('DELETE FROM webhook_endpoints');
const receiver = await startReceiver(t);
const seller = await newSeller(sys);
const port = new URL(receiver.url).port;
const register = (url: string) => call(`${sys.url}/v1/webhooks`, {
  method: 'POST', headers: { 'x-api-key': seller.key, 'content-type': 'application/json' }, body: JSON.stringify({ url, events: ['purchase.confirmed'] }),
});

t.test('registration refuses every internal address, and stores nothing', async (t) => {
  const refused = [
    `http://127.0.0.1:${port}/hook`, 'http://10.0.0.1/hook', 'http://169.254.169.254/latest/meta-data/', `http://localhost:${port}/hook`,
    `http://[::1]:${port}/hook`, 'http://0.0.0.0/hook', `http://[::ffff:127.0.0.1]:${port}/hook`, 'http://192.168.1.1/', 'http://172.16.0.1/',
    'http://100.64.0.1/', 'http://[fd00:ec2::254]/', 'http://[fe80::1]/', 'http://2130706433/', 'http://0x7f.1/',
  ];
  for (const url of refused) {
    const r = await register(url);
    problem(t, r, 400, 'VALIDATION_FAILED', url, '/url');
  }
  t.match((await register(`http://localhost:${port}/hook`)).body.detail, /localhost resolves to .*loopback/, 'a name is refused for what it resolves to');
  t.equal((await sys.pool.query('SELECT count(*)::int AS n FROM webhook_endpoints')).rows[0].n, 0, 'no endpoint stored');
  t.equal(receiver.received.length, 0, 'nothing reached the receiver');
});

t.test('the address table', async (t) => {
  for (const a of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '::1', '::ffff:10.0.0.1', 'fc00::1', '0.0.0.0', '224.0.0.1', '::']) t.ok(refusalOf(a), `${a} refused`);
  for (const a of ['93.184.215.14', '1.1.1.1', '2606:4700:4700::1111', '8.8.8.8']) t.equal(refusalOf(a), undefined, `${a} allowed`);
});

t.test('in production only https is accepted', async (t) => {
  const prod = new WebhookEndpoints(sys.pool, { allowPrivate: false, httpsOnly: true, secretOverlapMs: 1000 });
  await t.rejects(prod.checkUrl('http://93.184.215.14/hook'), { code: 'VALIDATION_FAILED', message: '/url must be https in production' });
  t.equal(await prod.checkUrl('https://93.184.215.14/hook'), 'https://93.184.215.14/hook', 'https to a public address is');
  const dev = new WebhookEndpoints(sys.pool, { allowPrivate: false, httpsOnly: false, secretOverlapMs: 1000 });
  await t.rejects(dev.checkUrl('ftp://93.184.215.14/'), { code: 'VALIDATION_FAILED', message: '/url must be an http or https URL' });
  await t.rejects(dev.checkUrl('http://user:pw@93.184.215.14/'), { code: 'VALIDATION_FAILED', message: '/url must not carry credentials' }, 'no credentials in the URL');
});

t.test('delivery checks again: an endpoint that now resolves to loopback gets nothing', async (t) => {
  // Registered while its name resolved elsewhere (as if allowed then): the worker must refuse it now.
  const permissive = new WebhookEndpoints(sys.pool, { allowPrivate: true, httpsOnly: false, secretOverlapMs: 1000 });
  const ep = await permissive.register({ url: `http://localhost:${port}/rebound`, events: ['purchase.confirmed'] }, { role: 'seller', userId: seller.id });
  const worker = await startWorker(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'worker'));
  t.teardown(() => worker.stop());
  const now = Date.now();
  const sale = await new Sales(sys.pool, sys.redis).create({
    name: 'Drop', sku: 'D', unitPrice: 100, currency: 'EUR', stock: 1, perBuyerLimit: 1, startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
  }, { role: 'seller', userId: seller.id });
  const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 0 });
  await publishEvents(sys.cfg, [confirmedEvent(sale.id, buyer!, newPurchaseId(sale.id))]);
  const attempt = await waitFor('a refused attempt', async () => (await sys.pool.query(
    `SELECT a.status_code, a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = $1`, [ep.id])).rows[0]);
  t.equal(attempt.status_code, null, 'no answer: nothing was sent');
  t.match(attempt.error, /^refused: localhost resolves to .*loopback/);
  t.equal(receiver.received.length, 0, 'the receiver got no request');
});
