/**
 * Fault: the broker delivers the same event more than once (a worker died
 * before its ack, a relay republished after a crash, an operator replayed a
 * dead letter). Redelivery must be harmless: one order row, one ledger entry
 * per purchase, the wallet debited (or refunded) once, Redis counters moved
 * once. Duplicates are delivered inside one batch, concurrently to two
 * workers, and again long after the first settlement.
 */
import t, { type Test } from 'tap';
import type { GetMessage } from 'amqplib';
import { call } from '../helpers/system.js';
import { auditSale } from '../helpers/invariants.js';
import { balanceHistogram, duplicateOrders, ledgerOfSale, redisSnapshot, startWorkers, type Amqp, type OrdersBench, ordersBench, soldToEach } from '../helpers/fault-kit.js';

const ACCEPTED_KEY = 'purchase.accepted.v1';
const CANCEL_KEY = 'purchase.cancel_requested.v1';

/** Waits for the queues to drain, then stops the workers (finishing their batches) and proves every message was acked. */
async function settleAndStop(t: Test, amqp: Amqp, stop: () => Promise<void>, dlq: string): Promise<void> {
  await amqp.quiet();
  await stop();
  const depths = await amqp.depths();
  t.same(Object.values(depths), Object.values(depths).map(() => 0), 'every copy was acked: main, retry and dead-letter queues are empty', { depths });
  t.equal(depths[dlq], 0, 'nothing dead-lettered');
}

const republish = (amqp: Amqp, exchange: string, m: Pick<GetMessage, 'content' | 'properties'> & { fields: { routingKey: string } }) =>
  amqp.publish(exchange, m.fields.routingKey, m.content, { ...m.properties, headers: { ...m.properties.headers } });

/**
 * Two workers wait on the queue; then every captured message arrives `copies`
 * times in a row (so copies of one event land in one worker's batch and in
 * the other worker at once), the captured originals are acked, and the sale
 * must drain with every copy acked and nothing dead-lettered.
 */
async function deliverEachTimes(t: Test, bench: OrdersBench, saleId: string, captured: Awaited<ReturnType<Amqp['takeEvents']>>, copies: number): Promise<void> {
  const stopWorkers = await startWorkers(bench.sys, bench.amqp, 2);
  for (const m of captured.events) for (let copy = 0; copy < copies; copy++) await republish(bench.amqp, bench.exchange, m);
  for (const m of captured.messages) bench.amqp.ch.ack(m);
  await bench.sys.drained(saleId, 30_000);
  await settleAndStop(t, bench.amqp, stopWorkers, bench.dlq);
}

t.test('an accepted purchase delivered many times (one batch, two workers, after settlement) settles once', async (t) => {
  const bench = await ordersBench(t);
  const { sys, amqp, exchange, orders, dlq } = bench;
  const N = 40;
  const { sale, buyers } = await soldToEach(t, sys, N);

  // No worker yet: capture the relay's very messages off the queue.
  const captured = await amqp.takeEvents(orders.queue, N);
  const { messages, events: originals } = captured;
  t.equal(await amqp.depth(orders.queue), 0, 'the relay published each purchase exactly once');
  t.ok(messages.length < N, `in CloudEvents batches (${N} events in ${messages.length} messages)`);
  const ids = originals.map((m) => m.event.data.purchaseId as string);
  t.equal(new Set(ids).size, N, 'one event per purchase');

  await deliverEachTimes(t, bench, sale.id, captured, 3);

  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.orders, N, 'one order row per purchase');
  t.equal(audit.confirmedOrders, N);
  t.equal(audit.purchaseDebits, N, 'one purchase:<id> ledger entry per purchase');
  t.equal(await duplicateOrders(sys.pool, sale.id), 0);
  t.same(audit.live, { stock: N, available: 0, reserved: 0, sold: N });
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: 99_000, n: N }], 'each wallet debited once');
  t.same(await ledgerOfSale(sys.pool, sale.id), { purchase: N, refund: 0, sum: -N * 1000 });
  const { rows: events } = await sys.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM purchase_events WHERE sale_id = $1', [sale.id]);
  t.equal(events[0]!.n, N, 'the event log holds each event once');

  // Long after settlement: the same events again, twice each, to two workers.
  const before = await redisSnapshot(sys.redis, sale.id);
  t.same(before.inflight, {}, 'nobody in flight');
  t.ok(Object.values(before.bought).every((q) => q === '1'), 'each buyer bought one');
  const stopAgain = await startWorkers(sys, amqp, 2);
  for (let copy = 0; copy < 2; copy++) for (const m of originals) await republish(amqp, exchange, m);
  await settleAndStop(t, amqp, stopAgain, dlq);

  t.same(await redisSnapshot(sys.redis, sale.id), before, 'Redis counters, bought and in-flight unchanged');
  const again = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(again.violations, []);
  t.equal(again.orders, N);
  t.equal(again.purchaseDebits, N);
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: 99_000, n: N }], 'still debited once');
  t.same(await ledgerOfSale(sys.pool, sale.id), { purchase: N, refund: 0, sum: -N * 1000 });
});

t.test('a cancel_requested event delivered several times refunds once', async (t) => {
  const { sys, amqp, exchange, orders, dlq } = await ordersBench(t);
  const sale = await sys.createSale({ stock: 5, perBuyerLimit: 1, unitPrice: 1000 });
  const [a, b, c] = await sys.createBuyers(3);
  const auth = (buyer: string) => ({ authorization: `Bearer ${sys.token(buyer)}` });

  // A and B buy and settle.
  let stopWorkers = await startWorkers(sys, amqp, 1);
  const pa = await sys.purchase(a!, sale.id);
  const pb = await sys.purchase(b!, sale.id);
  t.equal(pa.status, 202);
  t.equal(pb.status, 202);
  await sys.drained(sale.id, 30_000);
  await settleAndStop(t, amqp, stopWorkers, dlq);

  // No worker: A cancels (confirmed -> refund); C buys and cancels at once (still pending).
  const pc = await sys.purchase(c!, sale.id);
  t.equal(pc.status, 202);
  t.equal((await call(`${sys.url}${pa.body.statusUrl}`, { method: 'DELETE', headers: auth(a!) })).status, 202);
  t.equal((await call(`${sys.url}${pc.body.statusUrl}`, { method: 'DELETE', headers: auth(c!) })).status, 202);
  const { messages: capturedMessages, events: captured } = await amqp.takeEvents(orders.queue, 3);
  t.equal(await amqp.depth(orders.queue), 0);
  const byKind = (id: string, key: string) => captured.find((m) => m.fields.routingKey === key && m.event.data.purchaseId === id)!;
  const cancelA = byKind(pa.body.purchaseId, CANCEL_KEY);
  const acceptC = byKind(pc.body.purchaseId, ACCEPTED_KEY);
  const cancelC = byKind(pc.body.purchaseId, CANCEL_KEY);
  t.ok(cancelA && acceptC && cancelC, 'captured the cancellations and C’s acceptance');

  // A stale copy of A's acceptance, rebuilt as a CloudEvent from the event log.
  const { rows: [ev] } = await sys.pool.query<{ event_id: string; type: string; payload: unknown; occurred_at: Date }>(
    `SELECT event_id, type, payload, occurred_at FROM purchase_events WHERE purchase_id = $1 AND type = 'stampede.purchase.accepted.v1'`,
    [pa.body.purchaseId],
  );
  const staleAcceptA = JSON.stringify({
    specversion: '1.0', id: ev!.event_id, source: 'stampede:fault-test', type: ev!.type, time: ev!.occurred_at.toISOString(),
    subject: pa.body.purchaseId, datacontenttype: 'application/json', data: ev!.payload,
  });

  // Two workers; each cancellation three times, C's acceptance twice (even after its cancel), A's stale acceptance twice.
  stopWorkers = await startWorkers(sys, amqp, 2);
  for (const m of [cancelA, cancelC, cancelA, acceptC, cancelC, cancelA, acceptC, cancelC]) await republish(amqp, exchange, m);
  for (let i = 0; i < 2; i++) await amqp.publish(exchange, ACCEPTED_KEY, staleAcceptA, { messageId: ev!.event_id, contentType: 'application/cloudevents+json' });
  for (const m of capturedMessages) amqp.ch.ack(m);
  await sys.drained(sale.id, 30_000);
  await settleAndStop(t, amqp, stopWorkers, dlq);
  const afterFirst = await redisSnapshot(sys.redis, sale.id);

  // And once more after everything settled.
  stopWorkers = await startWorkers(sys, amqp, 2);
  for (const m of [cancelA, cancelC, acceptC]) await republish(amqp, exchange, m);
  await amqp.publish(exchange, ACCEPTED_KEY, staleAcceptA, { messageId: ev!.event_id });
  await settleAndStop(t, amqp, stopWorkers, dlq);
  t.same(await redisSnapshot(sys.redis, sale.id), afterFirst, 'late copies change nothing in Redis');

  const { rows: ledgerA } = await sys.pool.query<{ kind: string; amount: number }>(`SELECT kind, amount FROM ledger_entries WHERE user_id = $1 ORDER BY id`, [a]);
  t.same(ledgerA.map((r) => [r.kind, r.amount]), [['credit', 100_000], ['purchase', -1000], ['refund', 1000]], 'A: one debit, one refund');
  const { rows: ledgerC } = await sys.pool.query<{ kind: string; amount: number }>(`SELECT kind, amount FROM ledger_entries WHERE user_id = $1 AND kind <> 'credit' ORDER BY id`, [c]);
  // C's cancel may be settled before or after its acceptance (two workers): either nothing was
  // charged, or one debit and one refund. Never two of either.
  t.ok(
    ledgerC.length === 0 || (ledgerC.length === 2 && ledgerC[0]!.kind === 'purchase' && ledgerC[1]!.kind === 'refund'),
    'C: nothing charged, or charged and refunded once',
    { ledgerC },
  );
  t.same(await balanceHistogram(sys.pool, [a!, c!]), [{ balance: 100_000, n: 2 }], 'A and C are whole');
  t.same(await balanceHistogram(sys.pool, [b!]), [{ balance: 99_000, n: 1 }], 'B paid once');
  const { rows: st } = await sys.pool.query<{ purchase_id: string; status: string }>('SELECT purchase_id, status FROM orders WHERE sale_id = $1 ORDER BY purchase_id', [sale.id]);
  t.same(
    Object.fromEntries(st.map((r) => [r.purchase_id, r.status])),
    { [pa.body.purchaseId]: 'cancelled', [pb.body.purchaseId]: 'confirmed', [pc.body.purchaseId]: 'cancelled' },
    'one order row each, with the right status',
  );
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.same(audit.live, { stock: 5, available: 4, reserved: 0, sold: 1 }, 'both cancelled units back in stock, once');
  t.equal(audit.orders, 3);
  t.equal(audit.confirmedOrders, 1);
  t.same(afterFirst.bought, { [a!]: '0', [b!]: '1', [c!]: '0' }, 'per-buyer counts released once');
  t.same(afterFirst.inflight, {});
  const purchaseView = await call(`${sys.url}${pa.body.statusUrl}`, { headers: auth(a!) });
  t.match(purchaseView.body, { status: 'cancelled', cancelRequested: true });
});

t.test('a purchase that fails (no funds) delivered many times to two workers releases its stock once', async (t) => {
  const bench = await ordersBench(t);
  const { sys, amqp, exchange, orders, dlq } = bench;
  const N = 20;
  // No wallet at all: nothing for the settlement to lock, so two workers really race on the order row.
  const { sale, buyers } = await soldToEach(t, sys, N, { funds: { currency: 'EUR', amount: 0 } });
  const captured = await amqp.takeEvents(orders.queue, N);
  const { messages, events: originals } = captured;

  await deliverEachTimes(t, bench, sale.id, captured, 4);

  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.orders, N, 'one (failed) order row per purchase');
  t.equal(audit.confirmedOrders, 0);
  t.equal(audit.purchaseDebits, 0, 'nothing charged');
  t.same(audit.live, { stock: N, available: N, reserved: 0, sold: 0 }, 'every unit released exactly once');
  const snap = await redisSnapshot(sys.redis, sale.id);
  t.same(Object.values(snap.bought), buyers.map(() => '0'), 'every buyer’s count released exactly once');
  t.same(snap.inflight, {});
  const { rows } = await sys.pool.query<{ status: string; failure_reason: string; n: number }>(
    'SELECT status, failure_reason, count(*)::int AS n FROM orders WHERE sale_id = $1 GROUP BY 1, 2', [sale.id],
  );
  t.same(rows, [{ status: 'failed', failure_reason: 'INSUFFICIENT_FUNDS', n: N }]);
  const view = await call(`${sys.url}/v1/purchases/${JSON.parse(originals[0]!.content.toString()).data.purchaseId}`, {
    headers: { authorization: `Bearer ${sys.token(buyers.find((b) => originals[0]!.content.toString().includes(b))!)}` },
  });
  t.match(view.body, { status: 'failed', reason: 'INSUFFICIENT_FUNDS' }, 'the buyer is told why');
});
