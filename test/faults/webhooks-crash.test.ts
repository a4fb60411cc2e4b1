/**
 * Fault: the webhooks worker is SIGKILLed while a delivery is in flight
 * (the endpoint has the request, the worker has not recorded its answer).
 * Another worker takes the message over when its lease passes and sends it
 * again under the same webhook-id: the receiver sees a retry it can
 * deduplicate, never a second message.
 */
import t from 'tap';
import { boot, waitFor } from '../helpers/system.js';
import { faultEnv, spawnRole } from '../helpers/fault-kit.js';
import { confirmedEvent, newSeller, publishEvents, startReceiver } from '../helpers/webhooks.js';
import { startWorker } from '../../src/roles/worker.js';
import { createLogger } from '../../src/platform/log.js';
import { Sales } from '../../src/sales/sales.js';
import { newPurchaseId } from '../../src/platform/ids.js';

t.test('a worker killed mid-delivery: the next sends the same webhook-id, one message', async (t) => {
  const env = faultEnv({
    STAMPEDE_WORKER_QUEUES: 'webhooks', STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true', STAMPEDE_WEBHOOK_TIMEOUT_MS: '500', STAMPEDE_WEBHOOK_POLL_MS: '50',
  });
  const sys = await boot(t, { env });
  await sys.pool.query('DELETE FROM webhook_endpoints');
  const receiver = await startReceiver(t);
  receiver.answer('/hook', (n) => (n === 1 ? 'hang' : { status: 200 }));
  const seller = await newSeller(sys);
  const reg = await sys.operator('/v1/webhooks', { method: 'POST', headers: { 'x-api-key': seller.key }, body: JSON.stringify({ url: `${receiver.url}/hook`, events: ['purchase.confirmed'] }) });
  t.equal(reg.status, 201);
  const now = Date.now();
  const sale = await new Sales(sys.pool, sys.redis).create({
    name: 'Drop', sku: 'D', unitPrice: 100, currency: 'EUR', stock: 1, perBuyerLimit: 1, startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
  }, { role: 'seller', userId: seller.id });
  const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 0 });

  const child = spawnRole(t, 'worker', env);
  await publishEvents(sys.cfg, [confirmedEvent(sale.id, buyer!, newPurchaseId(sale.id))]);
  await waitFor('the first request in flight', async () => {
    if (child.proc.exitCode !== null) throw new Error(`worker exited early: ${child.output()}`);
    return receiver.of('/hook').length === 1;
  }, 60_000, 5);
  child.proc.kill('SIGKILL');
  t.equal((await child.exited).signal, 'SIGKILL', 'the worker was killed mid-delivery');
  receiver.release('/hook', 500);

  const worker = await startWorker(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'worker'));
  t.teardown(() => worker.stop());
  await waitFor('the retry', async () => receiver.of('/hook').length === 2, 30_000);
  const [first, second] = receiver.of('/hook');
  t.equal(second!.headers['webhook-id'], first!.headers['webhook-id'], 'the same webhook-id');
  t.equal(second!.body, first!.body, 'the same body');
  const { rows } = await sys.pool.query('SELECT id, status, attempts FROM webhook_deliveries WHERE endpoint_id = $1', [reg.body.id]);
  t.equal(rows.length, 1, 'one message');
  await waitFor('it recorded delivered', async () => (await sys.pool.query('SELECT status FROM webhook_deliveries WHERE id = $1', [rows[0].id])).rows[0].status === 'succeeded');
  t.equal(receiver.of('/hook').length, 2, 'and no third request');
});
