/**
 * Dead letters for operators, on the real services: the keeper moves what a
 * worker dead-lettered from the `.dlq` into Postgres; the api lists it (paged,
 * with its body and last error), shows one, replays one or all back to the
 * queue (counted, each once), and purges after the queue's name is given
 * again. An accepted purchase whose message is dead-lettered is failed
 * (UNSETTLEABLE) at once, its stock back on sale (invariant 7): replaying
 * it, or another copy arriving, then changes nothing: one order, no debit.
 * Bad input changes nothing.
 */
import t, { type Test } from 'tap';
import { call, waitFor, type System } from '../helpers/system.js';
import { ordersBench, soldToEach, startWorkers } from '../helpers/fault-kit.js';
import { problem } from '../helpers/problem.js';
import { auditSale } from '../helpers/invariants.js';
import { createLogger } from '../../src/platform/log.js';
import { DeadLetterKeeper } from '../../src/ops/dead-letters.js';

const PRICE = 1000;
const FUNDS = 100_000;

function keep(t: Test, sys: System): DeadLetterKeeper {
  const keeper = new DeadLetterKeeper({ pool: sys.pool, amqpUrl: sys.cfg.STAMPEDE_AMQP_URL, topology: sys.cfg.topology, log: createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'keeper') });
  keeper.start();
  t.teardown(() => keeper.stop());
  return keeper;
}

const ordersSummary = async (sys: System) => ((await sys.operator('/v1/ops/dead-letters')).body.queues as { queue: string; waiting: number; replayed: number; unarchived: number }[])
  .find((q) => q.queue === 'orders')!;

t.test('dead-lettered purchases: failed at once, archived, listed, shown, replayed once each; a replay or another copy changes nothing', async (t) => {
  const { sys, amqp, exchange, orders, dlq } = await ordersBench(t);
  const keeper = keep(t, sys);
  const { sale, buyers } = await soldToEach(t, sys, 2, { unitPrice: PRICE, funds: { currency: 'EUR', amount: FUNDS } });
  const { messages, events } = await amqp.takeEvents(orders.queue, 2);
  for (const m of messages) amqp.ch.ack(m);
  const [first, second] = events.map((e) => e.event);
  const start = (await ordersSummary(sys)).waiting;

  // The sale's terms changed under its events: no retry can settle them, so the worker dead-letters both with the reason.
  await sys.pool.query('UPDATE sales SET unit_price = $2 WHERE id = $1', [sale.id, PRICE + 1]);
  for (const e of [first, second]) await amqp.publish(exchange, 'purchase.accepted.v1', JSON.stringify(e), { messageId: e.id, contentType: 'application/cloudevents+json' });
  const stop = await startWorkers(sys, amqp, 1);
  t.teardown(stop);
  await waitFor('both archived', async () => (await ordersSummary(sys)).waiting === start + 2);
  const orderOf = async (purchaseId: string) => (await sys.pool.query<{ status: string; failure_reason: string }>('SELECT status, failure_reason FROM orders WHERE purchase_id = $1', [purchaseId])).rows[0];
  await sys.drained(sale.id);
  for (const e of [first, second]) t.same(await orderOf(e.data.purchaseId), { status: 'failed', failure_reason: 'UNSETTLEABLE' }, 'failed when dead-lettered');
  t.equal(keeper.archived >= 2, true, 'the keeper archived them');
  await waitFor('the .dlq emptied', async () => (await amqp.depth(dlq)) === 0);
  t.equal((await ordersSummary(sys)).unarchived, 0, 'none left unarchived');

  const page = (await sys.operator('/v1/ops/dead-letters/orders?limit=2')).body;
  const mine = page.items.filter((d: { body: { id: string } }) => [first.id, second.id].includes(d.body.id));
  t.equal(mine.length, 2, 'both listed, newest first');
  for (const d of mine) {
    t.match(d.lastError, /terms differ from the event's/, 'with the reason it was dead-lettered');
    t.equal(d.messageId, d.body.id, 'its message id');
    t.equal(d.queue, 'orders');
    t.equal(d.replayedAt, null);
  }
  const [newer, older] = mine as { id: number; body: { id: string } }[];
  t.ok(newer!.id > older!.id, 'newest first');
  const one = (await sys.operator('/v1/ops/dead-letters/orders?limit=1')).body;
  t.equal(one.items.length, 1);
  const next = (await sys.operator(`/v1/ops/dead-letters/orders?limit=1&after=${one.next}`)).body;
  t.equal(next.items[0].id, older!.id, 'the next page after the cursor');
  const shown = (await sys.operator(`/v1/ops/dead-letters/orders/${older!.id}`)).body;
  t.same(shown.body, older!.body, 'one dead letter, its body as it was published');

  // The terms back; the older replayed alone finds its failed order.
  await sys.pool.query('UPDATE sales SET unit_price = $2 WHERE id = $1', [sale.id, PRICE]);
  const replayed = await sys.operator(`/v1/ops/dead-letters/orders/${older!.id}/replay`, { method: 'POST' });
  t.same([replayed.status, replayed.body], [200, { replayed: 1 }]);
  const purchaseOf = (d: { body: { id: string } }) => [first, second].find((e) => e.id === d.body.id)!.data.purchaseId as string;
  await amqp.quiet(500, 30_000, [orders.queue]);
  t.equal((await orderOf(purchaseOf(older!)))?.status, 'failed', 'the replay found the failed order');
  problem(t, await sys.operator(`/v1/ops/dead-letters/orders/${older!.id}/replay`, { method: 'POST' }), 409, 'CONFLICT', 'replaying it again');

  // Another copy of the newer one arrives (a redelivery); replaying its dead letter then changes nothing either.
  const other = [first, second].find((e) => e.id === newer!.body.id)!;
  await amqp.publish(exchange, 'purchase.accepted.v1', JSON.stringify(other), { messageId: other.id, contentType: 'application/cloudevents+json' });
  await amqp.quiet(500, 30_000, [orders.queue]);
  t.equal((await orderOf(purchaseOf(newer!)))?.status, 'failed', 'the other copy found the failed order');
  const all = await sys.operator('/v1/ops/dead-letters/orders/replay', { method: 'POST' });
  t.equal(all.status, 200);
  t.ok(all.body.replayed >= 1, 'replay all: every waiting one, counted');
  await amqp.quiet(1_500, 30_000);
  await sys.drained(sale.id);

  const { rows: debits } = await sys.pool.query<{ ref: string; n: number }>(
    "SELECT ref, count(*)::int AS n FROM ledger_entries WHERE ref = ANY($1) GROUP BY ref", [[first, second].map((e) => `purchase:${e.data.purchaseId}`)]);
  t.same(debits, [], 'no debit');
  const { rows: wallets } = await sys.pool.query<{ balance: number }>('SELECT balance::int FROM wallets WHERE user_id = ANY($1)', [buyers]);
  t.same(wallets.map((w) => w.balance), [FUNDS, FUNDS], 'nobody charged');
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'the sale audits clean');
  t.equal(audit.orders, 2, 'two orders');
  t.equal(await amqp.depth(dlq), 0, 'nothing dead-lettered again');
  const after = (await sys.operator(`/v1/ops/dead-letters/orders/${newer!.id}`)).body;
  t.match(after.replayedAt, /^\d{4}-/, 'recorded replayed');
});

t.test('purge: the queue named again; bad input on every route is refused and changes nothing', async (t) => {
  const { sys, amqp, dlq } = await ordersBench(t);
  keep(t, sys);
  const before = (await ordersSummary(sys)).waiting;
  await amqp.sendToQueue(dlq, 'not json at all', { messageId: 'poison-1', headers: { 'x-stampede-last-error': 'message is not JSON', 'x-stampede-dead-lettered-at': new Date().toISOString() } });
  await waitFor('archived', async () => (await ordersSummary(sys)).waiting === before + 1);
  const listed = (await sys.operator('/v1/ops/dead-letters/orders?limit=1')).body.items[0];
  t.equal(listed.body, 'not json at all', 'a body that is not JSON is shown as text');
  t.equal(listed.lastError, 'message is not JSON');

  const purge = (body: unknown, queue = 'orders') => sys.operator(`/v1/ops/dead-letters/${queue}/purge`, { method: 'POST', body: JSON.stringify(body) });
  problem(t, await purge({}), 400, 'VALIDATION_FAILED', 'no confirmation', '/confirm');
  problem(t, await purge({ confirm: 'auctions' }), 400, 'VALIDATION_FAILED', 'another queue\'s name', '/confirm');
  problem(t, await purge({ confirm: 'orders', upTo: 0 }), 400, 'VALIDATION_FAILED', 'upTo 0', '/upTo');
  problem(t, await purge({ confirm: 'orders', extra: 1 }), 400, 'VALIDATION_FAILED', 'an unknown field');
  problem(t, await purge({ confirm: 'nope' }, 'nope'), 404, 'NOT_FOUND', 'an unknown queue');
  for (const [path, status, code] of [
    ['/v1/ops/dead-letters/nope', 404, 'NOT_FOUND'], ['/v1/ops/dead-letters/orders/0', 404, 'NOT_FOUND'], ['/v1/ops/dead-letters/orders/abc', 404, 'NOT_FOUND'],
    ['/v1/ops/dead-letters/orders/99999999999', 404, 'NOT_FOUND'], ['/v1/ops/dead-letters/orders?limit=0', 400, 'VALIDATION_FAILED'],
    ['/v1/ops/dead-letters/orders?after=x', 400, 'VALIDATION_FAILED'], ['/v1/ops/dead-letters/orders?status=gone', 400, 'VALIDATION_FAILED'],
  ] as const) problem(t, await sys.operator(path), status, code, path);
  problem(t, await sys.operator('/v1/ops/dead-letters/orders/99999999999/replay', { method: 'POST' }), 404, 'NOT_FOUND', 'replaying an unknown one');
  for (const path of ['/v1/ops/dead-letters', '/v1/ops/dead-letters/orders']) {
    problem(t, await call(`${sys.url}${path}`), 401, 'UNAUTHORIZED', `${path} without a key`);
  }
  problem(t, await call(`${sys.url}/v1/ops/dead-letters/orders/replay`, { method: 'POST' }), 401, 'UNAUTHORIZED', 'replay without a key');
  t.equal((await ordersSummary(sys)).waiting, before + 1, 'nothing changed');

  const purged = await purge({ confirm: 'orders', upTo: listed.id });
  t.same([purged.status, purged.body], [200, { purged: before + 1 }], 'purged what was waiting, up to what the operator saw');
  t.equal((await ordersSummary(sys)).waiting, 0);
  t.same((await sys.operator('/v1/ops/dead-letters/orders')).body.items, [], 'none left');
});

t.test('a keeper stopped while it connects stops (a scheduler started and stopped at once)', async (t) => {
  const { sys } = await ordersBench(t);
  const keeper = new DeadLetterKeeper({ pool: sys.pool, amqpUrl: sys.cfg.STAMPEDE_AMQP_URL, topology: sys.cfg.topology, log: createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'keeper') });
  keeper.start();
  const stopped = await Promise.race([keeper.stop().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
  t.equal(stopped, 'stopped');
});
