/**
 * Nothing accepted waits for ever (invariant 7), with the real relay, worker
 * and scheduler:
 *   - an accepted purchase whose message is dead-lettered fails
 *     (UNSETTLEABLE), its stock back on sale and its buyer told, once; a
 *     replay of the dead letter changes nothing;
 *   - a purchase still pending at its reservation deadline is given up: its
 *     expiry travels through the outbox and fails it (RESERVATION_EXPIRED),
 *     unless its settlement committed first. Both orders are played: the
 *     expiry first (the late acceptance then charges nothing) and the
 *     acceptance first (the expiry then changes nothing).
 */
import t, { type Test } from 'tap';
import { auditSale } from '../helpers/invariants.js';
import { balanceHistogram, faultEnv, openAmqp, soldToEach, startWorkers, type Amqp } from '../helpers/fault-kit.js';
import { boot, waitFor, type System } from '../helpers/system.js';
import { readLiveSale, readPurchase } from '../../src/sales/scripts.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';
import { EVENTS } from '../../src/events/catalogue.js';

const PRICE = 1000;
/** The worker settles orders only: the buyers' announcements stay in the notifications queue, to be read. */
const ORDERS_ONLY = { STAMPEDE_WORKER_QUEUES: 'orders' };
const FUNDS = 100_000;

/** Each purchase id of the sale that Redis holds, by buyer. */
async function purchasesOf(sys: System, saleId: string, buyers: string[]): Promise<string[]> {
  const inflight = await sys.redis.hgetall(`{sale:${saleId}}:inflight`);
  return buyers.map((b) => inflight[b]!);
}

async function ordersOf(sys: System, purchaseIds: string[]): Promise<{ purchase_id: string; status: string; failure_reason: string | null }[]> {
  const { rows } = await sys.pool.query('SELECT purchase_id, status, failure_reason FROM orders WHERE purchase_id = ANY($1) ORDER BY purchase_id', [purchaseIds]);
  return rows;
}

/** The purchase announcements waiting in the notifications queue (no notifications worker runs), acked. */
async function announcements(amqp: Amqp, queue: string, n: number): Promise<any[]> {
  // Only the purchase results: a scheduler started here also claims the scheduled sends other tests left in
  // the shared database, and their notification.due events go to the same queue.
  const told: any[] = [];
  const deadline = Date.now() + 30_000;
  while (told.length < n) {
    const { messages, events } = await amqp.takeEvents(queue, 1, Math.max(1, deadline - Date.now()));
    for (const m of messages) amqp.ch.ack(m);
    told.push(...events.map((e) => e.event).filter((e) => e.type === EVENTS.purchaseFailed.type));
  }
  return told;
}

t.test('an accepted purchase whose message is dead-lettered fails, its stock back on sale and its buyer told, once', async (t) => {
  const sys = await boot(t, { relay: true, env: faultEnv(ORDERS_ONLY) });
  const amqp = await openAmqp(t, sys.cfg);
  const N = 3;
  const { sale, buyers } = await soldToEach(t, sys, N, { unitPrice: PRICE });
  const purchaseIds = await purchasesOf(sys, sale.id, buyers);
  // Postgres' terms now contradict every accepted event: a PermanentError, dead-lettered at once.
  await sys.pool.query('UPDATE sales SET unit_price = unit_price + 1 WHERE id = $1', [sale.id]);

  const stop = await startWorkers(sys, amqp, 1);
  await sys.drained(sale.id, 30_000);
  await stop();

  const live = await readLiveSale(sys.redis, sale.id);
  t.same({ available: live!.available, reserved: live!.reserved, sold: live!.sold }, { available: N, reserved: 0, sold: 0 }, 'every unit back on sale');
  for (const id of purchaseIds) {
    const p = await readPurchase(sys.redis, sale.id, id);
    t.same([p!.status, p!.reason], ['failed', 'UNSETTLEABLE'], `${id}: failed in Redis with its reason`);
  }
  t.same((await ordersOf(sys, purchaseIds)).map((o) => [o.status, o.failure_reason]), Array(N).fill(['failed', 'UNSETTLEABLE']), 'one failed order each');
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: FUNDS, n: N }], 'nobody charged');
  const told = await announcements(amqp, sys.cfg.topology.notifications.queue, N);
  t.same(told.map((e) => [e.type, e.data.reason]).sort(), Array(N).fill([EVENTS.purchaseFailed.type, 'UNSETTLEABLE']), 'each buyer told why');
  t.same(new Set(told.map((e) => e.data.buyerId)), new Set(buyers), 'each buyer told once');
  const dlq = deadLetterQueue(sys.cfg.topology.orders);
  t.ok((await amqp.depth(dlq)) > 0, 'the message is in the dead letters for an operator');

  // An operator replays the dead letters after the cause is fixed: the failed orders stand.
  await sys.pool.query('UPDATE sales SET unit_price = unit_price - 1 WHERE id = $1', [sale.id]);
  const dead = await amqp.take(dlq, await amqp.depth(dlq), 10_000);
  for (const m of dead) {
    await amqp.sendToQueue(sys.cfg.topology.orders.queue, m.content, { ...m.properties, headers: {} });
    amqp.ch.ack(m);
  }
  const again = await startWorkers(sys, amqp, 1);
  await amqp.quiet(500, 30_000, [sys.cfg.topology.orders.queue]);
  await again();
  t.same((await ordersOf(sys, purchaseIds)).map((o) => o.status), Array(N).fill('failed'), 'replayed: still failed');
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: FUNDS, n: N }], 'replayed: still nobody charged');
  const after = await readLiveSale(sys.redis, sale.id);
  t.equal(after!.available, N, 'the stock was released once');
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
});

const DEADLINE_ENV = { ...ORDERS_ONLY, STAMPEDE_RESERVATION_DEADLINE_MS: '1000', STAMPEDE_RESERVATION_SWEEP_MS: '200' };

/** Purchases accepted and their acceptances taken off the orders queue (held back, as a broker or worker delay would). */
async function heldBack(t: Test, sys: System, amqp: Amqp, n: number) {
  const { sale, buyers } = await soldToEach(t, sys, n, { unitPrice: PRICE });
  const purchaseIds = await purchasesOf(sys, sale.id, buyers);
  const accepted = await amqp.takeEvents(sys.cfg.topology.orders.queue, n);
  for (const m of accepted.messages) amqp.ch.ack(m);
  return { sale, buyers, purchaseIds, accepted: accepted.events };
}

t.test('the reservation deadline fails a purchase its acceptance never reached settlement for; the late acceptance then charges nothing', async (t) => {
  const sys = await boot(t, { relay: true, env: faultEnv(DEADLINE_ENV) });
  const amqp = await openAmqp(t, sys.cfg);
  const N = 4;
  const { sale, buyers, purchaseIds, accepted } = await heldBack(t, sys, amqp, N);
  const { deadline } = await sys.startScheduler();
  await waitFor('the deadline to give every purchase up', async () => deadline.expired >= N, 30_000);

  const stop = await startWorkers(sys, amqp, 1);
  await sys.drained(sale.id, 30_000);
  t.same((await ordersOf(sys, purchaseIds)).map((o) => [o.status, o.failure_reason]), Array(N).fill(['failed', 'RESERVATION_EXPIRED']), 'failed at the deadline');
  const told = await announcements(amqp, sys.cfg.topology.notifications.queue, N);
  t.same(told.map((e) => e.data.reason), Array(N).fill('RESERVATION_EXPIRED'), 'each buyer told why');

  // The acceptances arrive late (the broker gives them back, an operator replays them).
  for (const e of accepted) await amqp.publish(sys.cfg.topology.exchange, e.fields.routingKey, e.content, e.properties as never);
  await amqp.quiet(500, 30_000, [sys.cfg.topology.orders.queue]);
  await stop();
  t.same((await ordersOf(sys, purchaseIds)).map((o) => o.status), Array(N).fill('failed'), 'the late acceptances find the failed orders');
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: FUNDS, n: N }], 'nobody charged');
  const live = await readLiveSale(sys.redis, sale.id);
  t.same({ available: live!.available, reserved: live!.reserved, sold: live!.sold }, { available: N, reserved: 0, sold: 0 }, 'the stock released once');
  t.equal(deadline.expired, N, 'each purchase given up once, however many sweeps passed');
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
});

t.test('an acceptance settled before its expiry stands: the expiry changes nothing', async (t) => {
  const sys = await boot(t, { relay: true, env: faultEnv(DEADLINE_ENV) });
  const amqp = await openAmqp(t, sys.cfg);
  const N = 4;
  const { sale, buyers, purchaseIds, accepted } = await heldBack(t, sys, amqp, N);
  const { deadline, stop: stopScheduler } = await sys.startScheduler();
  await waitFor('the deadline to give every purchase up', async () => deadline.expired >= N, 30_000);
  await stopScheduler();
  // Both now wait in the orders queue: take the expiries too, then play the acceptances first.
  const expiries = await amqp.takeEvents(sys.cfg.topology.orders.queue, N);
  for (const m of expiries.messages) amqp.ch.ack(m);
  t.same(expiries.events.map((e) => e.event.type), Array(N).fill(EVENTS.purchaseExpired.type), 'the expiries went through the outbox');

  const stop = await startWorkers(sys, amqp, 1);
  for (const e of accepted) await amqp.publish(sys.cfg.topology.exchange, e.fields.routingKey, e.content, e.properties as never);
  await sys.drained(sale.id, 30_000);
  for (const e of expiries.events) await amqp.publish(sys.cfg.topology.exchange, e.fields.routingKey, e.content, e.properties as never);
  await amqp.quiet(500, 30_000, [sys.cfg.topology.orders.queue]);
  await stop();
  t.same((await ordersOf(sys, purchaseIds)).map((o) => o.status), Array(N).fill('confirmed'), 'confirmed, as settled first');
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: FUNDS - PRICE, n: N }], 'each charged once');
  const live = await readLiveSale(sys.redis, sale.id);
  t.same({ available: live!.available, reserved: live!.reserved, sold: live!.sold }, { available: 0, reserved: 0, sold: N }, 'sold, nothing released');
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
});
