/**
 * Fault: RabbitMQ goes down while buyers are buying. The api never touches
 * the broker on the purchase path, so every purchase still gets its 202 and
 * waits in the Redis outbox; readiness says 503 meanwhile. When the broker
 * is back, the relay and the worker reconnect on their own and everything
 * settles exactly once.
 *
 * The broker is restarted at teardown whatever happens: the other test
 * files need it.
 */
import t from 'tap';
import { boot, call, sleep, waitFor, type HttpAnswer, type System } from '../helpers/system.js';
import {
  assertSoldOnceEach, faultEnv, orderCount, purchaseAll, services, statusCounts,
} from '../helpers/fault-kit.js';
import { saleKeys } from '../../src/sales/keys.js';
import { RELAY_GROUP } from '../../src/platform/messaging/outbox.js';

const N = 300;
const PRICE = 1000;

const readyz = (sys: System) => call(`${sys.url}/readyz`);

/** The relay group of an outbox stream: entries not yet read (lag) and read but not acknowledged (pending). */
async function relayGroup(sys: System, stream: string): Promise<{ lag: number; pending: number }> {
  const groups = (await sys.redis.xinfo('GROUPS', stream)) as (string | number | null)[][];
  for (const g of groups) {
    const f = new Map<string, string | number | null>();
    for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]!);
    if (f.get('name') === RELAY_GROUP) return { lag: Number(f.get('lag')), pending: Number(f.get('pending')) };
  }
  throw new Error(`no ${RELAY_GROUP} group on ${stream}`);
}

t.test(`RabbitMQ down while ${N} buyers purchase: all 202, all settled once it is back`, async (t) => {
  let brokerDown = false;
  t.teardown(async () => {
    if (brokerDown) await services('start-rabbitmq');
  });
  const sys = await boot(t, { relay: true, worker: true, env: faultEnv() });
  const sale = await sys.createSale({ stock: N, perBuyerLimit: 1, unitPrice: PRICE });
  const buyers = await sys.createBuyers(N);
  await waitFor('the api to be ready', async () => (await readyz(sys)).status === 200, 15_000);

  // Phase 1, broker up: a first wave, settling as it goes.
  const first = await purchaseAll(sys, buyers.slice(0, 100), sale.id, 20);
  // Phase 2: the broker stops while a paced stream of buyers keeps purchasing
  // (the relay and the worker lose it mid-publish, mid-batch).
  const t0 = Date.now();
  brokerDown = true;
  const stopping = services('stop-rabbitmq');
  const during: HttpAnswer[] = [];
  for (const b of buyers.slice(100, 200)) {
    during.push(await sys.purchase(b, sale.id));
    await sleep(25);
  }
  await stopping;
  t.comment(`broker stopped in ${Date.now() - t0} ms`);

  // The api accepts purchases without the broker (the outbox holds them): it stays ready, degraded, so a load
  // balancer following /readyz keeps every node in.
  const degraded = await waitFor('readiness to show the broker down', async () => {
    const r = await readyz(sys);
    return r.body.checks?.rabbitmq !== 'ok' ? r : undefined;
  }, 10_000);
  t.equal(degraded.status, 200, 'still ready with the broker down');
  t.equal(degraded.body.status, 'ready');
  t.same(degraded.body.degraded, ['rabbitmq'], 'degraded: the broker');
  t.equal(degraded.body.checks.redis, 'ok');
  t.equal(degraded.body.checks.postgres, 'ok');
  t.match((await call(`${sys.url}/metrics`)).body, /stampede_dependency_up\{[^}]*dependency="rabbitmq"[^}]*\} 0/, 'the metric says the broker is down');

  // Phase 3, broker down: the last wave.
  const after = await purchaseAll(sys, buyers.slice(200), sale.id, 50);
  const answers = [...first, ...during, ...after];
  t.same(statusCounts(answers), { 202: N }, `all ${N} purchases accepted, before, during and after the broker stopped`);
  const ids = answers.map((a) => a.body.purchaseId as string);
  t.equal(new Set(ids).size, N);

  // The last wave waits in the outbox, unread: no relay can publish it. Nothing of it settled.
  const outbox = saleKeys.outbox(sale.id);
  const group = await relayGroup(sys, outbox);
  t.ok(group.lag >= N - 200, `the outbox holds the backlog (${group.lag} unread, ${group.pending} pending, length ${await sys.redis.xlen(outbox)})`);
  const settledWhileDown = await orderCount(sys.pool, sale.id);
  t.ok(settledWhileDown <= 200, `nothing of the last wave settled (${settledWhileDown} orders)`);
  const ops = await sys.operator('/v1/ops/queues');
  t.equal(ops.status, 503, 'the queue view says the broker is unavailable');
  t.equal(ops.body.code, 'UNAVAILABLE');
  t.equal((await readyz(sys)).status, 200, 'still ready');

  const t1 = Date.now();
  await services('start-rabbitmq');
  brokerDown = false;
  t.comment(`broker started in ${Date.now() - t1} ms`);

  await waitFor('readiness to recover', async () => (await readyz(sys)).body.degraded?.length === 0, 30_000);
  t.match((await call(`${sys.url}/metrics`)).body, /stampede_dependency_up\{[^}]*dependency="rabbitmq"[^}]*\} 1/, 'the metric says the broker is back');
  await sys.drained(sale.id, 60_000);
  t.comment(`settled ${Date.now() - t1} ms after the broker came back`);
  const view = await waitFor('the outbox to empty', async () => {
    const r = await sys.operator('/v1/ops/queues');
    return r.status === 200 && r.body.outboxBacklog === 0 && r.body.queues.every((q: { messages: number }) => q.messages === 0) ? r.body : undefined;
  }, 15_000);
  t.equal(view.deadLetters, 0, 'nothing dead-lettered');
  t.equal(await sys.redis.xlen(outbox), 0, 'the outbox is trimmed');

  await assertSoldOnceEach(t, sys, sale.id, buyers, PRICE, 100_000);
  const { rows } = await sys.pool.query<{ purchase_id: string }>('SELECT purchase_id FROM orders WHERE sale_id = $1', [sale.id]);
  t.same(rows.map((r) => r.purchase_id).sort(), [...ids].sort(), 'exactly the accepted purchases became orders');
});
