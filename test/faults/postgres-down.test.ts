/**
 * Fault: Postgres stops for 10 s in the middle of a purchase storm, then
 * comes back. The purchase path never touches Postgres (the sale is live in
 * Redis), so every purchase still gets its 202; the worker's transactions
 * fail meanwhile (some mid-batch, some with their COMMIT on the wire) and go
 * through the delay tiers. Once Postgres is back every 202 must be settled
 * exactly once: one order, one debit, Redis' counters equal to Postgres,
 * nothing dead-lettered.
 *
 * Postgres is started again at teardown whatever happens: the other test files need it.
 */
import t from 'tap';
import { boot, sleep, waitFor, type HttpAnswer } from '../helpers/system.js';
import { assertSoldOnceEach, faultEnv, openAmqp, orderCount, services, statusCounts } from '../helpers/fault-kit.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';

const N = 1500;
const PRICE = 1000;
const LANES = 20;
const DOWN_MS = 10_000;

t.test(`Postgres down ${DOWN_MS / 1000} s during a storm of ${N} purchases: every 202 settled once`, async (t) => {
  let pgDown = false;
  t.teardown(async () => {
    if (pgDown) await services('start-postgres');
  });
  // Delay tiers that outlast the outage (2 s + 5 s + 15 s): a batch that failed while Postgres was away is
  // retried, not dead-lettered (the default is 1 s, 5 s, 30 s).
  const sys = await boot(t, { relay: true, worker: true, env: faultEnv({ STAMPEDE_RETRY_DELAYS_MS: '2000,5000,15000' }) });
  const amqp = await openAmqp(t, sys.cfg);
  const sale = await sys.createSale({ stock: N, perBuyerLimit: 1, unitPrice: PRICE });
  const buyers = await sys.createBuyers(N);

  // A paced storm of about 100 purchases a second, so that it runs through the whole outage.
  const answers: HttpAnswer[] = new Array(N);
  let answered = 0;
  let next = 0;
  const storm = Promise.all(Array.from({ length: LANES }, async () => {
    for (let i = next++; i < N; i = next++) {
      answers[i] = await sys.purchase(buyers[i]!, sale.id);
      answered++;
      await sleep(200);
    }
  }));

  await waitFor('a third of the storm to be answered', async () => answered >= N / 3, 30_000, 5);
  const settledBefore = await orderCount(sys.pool, sale.id);
  pgDown = true;
  const t0 = Date.now();
  t.comment((await services('stop-postgres')).trim());
  const answeredAtStop = answered;
  await sleep(DOWN_MS - (Date.now() - t0));
  const answeredWhileDown = answered - answeredAtStop;
  t.comment((await services('start-postgres')).trim());
  pgDown = false;
  t.comment(`postgres down ${Date.now() - t0} ms; ${settledBefore} orders and ${answeredAtStop} answers before it stopped, ${answeredWhileDown} purchases answered while it was down`);
  t.ok(answeredWhileDown > 100, 'buyers kept buying while Postgres was down');
  await storm;

  t.same(statusCounts(answers), { 202: N }, 'every purchase accepted, before, during and after the outage');
  const ids = answers.map((a) => a.body.purchaseId as string);
  const t1 = Date.now();
  await sys.drained(sale.id, 60_000);
  t.comment(`settled ${Date.now() - t1} ms after the storm ended`);
  await amqp.quiet(600, 30_000);
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.orders)), 0, 'nothing dead-lettered');

  const { rows } = await sys.pool.query<{ purchase_id: string }>('SELECT purchase_id FROM orders WHERE sale_id = $1', [sale.id]);
  const orders = new Set(rows.map((r) => r.purchase_id));
  t.equal(ids.filter((id) => !orders.has(id)).length, 0, '0 lost: every 202 has its order');
  t.equal(rows.length, N, '0 doubled');
  await assertSoldOnceEach(t, sys, sale.id, buyers, PRICE, 100_000);
});
