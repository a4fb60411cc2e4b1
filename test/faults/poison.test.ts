/**
 * Fault: poison messages on the orders queue, amid real purchases. Bodies
 * that are not JSON, JSON that is not a purchase event, an event of an
 * unknown type go straight to the `.dlq` queue with a precise reason. Events
 * that look well formed but must never settle (a negative price, an
 * impossible time, a sale that does not exist) end in the `.dlq` too, at once
 * (a sale that does not exist is a permanent failure: it is never retried),
 * and change nothing. The worker keeps settling the
 * good messages, exactly once.
 */
import t from 'tap';
import { boot } from '../helpers/system.js';
import { auditSale } from '../helpers/invariants.js';
import {
  balanceHistogram, faultEnv, ledgerOfSale, openAmqp, purchaseAll, statusCounts,
} from '../helpers/fault-kit.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';

const N = 60;
const PRICE = 1000;

t.test('poison messages are dead-lettered; the worker keeps settling good ones', async (t) => {
  const sys = await boot(t, { relay: true, worker: true, env: faultEnv() });
  const amqp = await openAmqp(t, sys.cfg);
  const { exchange, orders, retryDelaysMs } = sys.cfg.topology;
  const dlq = deadLetterQueue(orders);
  const sale = await sys.createSale({ stock: N, perBuyerLimit: 1, unitPrice: PRICE });
  const buyers = await sys.createBuyers(N);
  const [poisonBuyer] = await sys.createBuyers(1);
  // Ids unique to this run, so a poison message that slipped through once cannot hide behind ON CONFLICT later.
  const run = sale.id.slice(4);
  const negativeId = `pur_${run}_negative${run.slice(0, 8)}`;
  // A well-formed sale id that names no sale, and a purchase of it.
  const orphanSale = `sal_${run.split('').reverse().join('')}`;
  const orphanId = `pur_${orphanSale.slice(4)}_orphan${run.slice(0, 10)}`;
  const strangerId = `pur_${orphanSale.slice(4)}_stranger${run.slice(0, 8)}`;

  // Well-formed purchase ids of this sale: each poison below is wrong in one way only.
  const poisonId = `pur_${run}_poison${run.slice(0, 10)}`;
  const badTimeId = `pur_${run}_badtime${run.slice(0, 9)}`;
  const event = (over: Record<string, unknown>, data: Record<string, unknown> = {}) =>
    JSON.stringify({
      specversion: '1.0', id: `evt-poison-${run}`, source: 'stampede:fault-test', type: 'stampede.purchase.accepted.v1',
      time: new Date().toISOString(), datacontenttype: 'application/json',
      data: { purchaseId: poisonId, saleId: sale.id, buyerId: poisonBuyer, quantity: 1, unitPrice: PRICE, currency: 'EUR', acceptedAt: Date.now(), ...data },
      ...over,
    });
  // `reason`: what x-stampede-last-error must say; `retried`: whether it goes through the retry tiers first.
  const NOT_EVENT = /^message is not a purchase event$/;
  // `key: ''` is sent straight to the orders queue (default exchange); the others are routed by the topic exchange.
  const poison: { name: string; key: string; body: string; reason: RegExp; retried: boolean | 'either' }[] = [
    { name: 'not JSON', key: 'purchase.accepted.v1', body: '{"specversion":"1.0", this is not json', reason: /^message is not JSON$/, retried: false },
    { name: 'binary garbage, straight to the queue', key: '', body: '\u0000\u00ff\u00fe garbage', reason: /^message is not JSON$/, retried: false },
    { name: 'JSON, not an event', key: 'purchase.accepted.v1', body: '{"hello":"world"}', reason: NOT_EVENT, retried: false },
    { name: 'a JSON array', key: 'purchase.cancel_requested.v1', body: '[1,2,3]', reason: NOT_EVENT, retried: false },
    { name: 'JSON null', key: 'purchase.accepted.v1', body: 'null', reason: NOT_EVENT, retried: false },
    { name: 'data missing fields', key: 'purchase.accepted.v1', body: event({ id: `evt-no-buyer-${run}` }, { buyerId: undefined, quantity: 'one' }), reason: NOT_EVENT, retried: false },
    {
      name: 'an unknown event type', key: 'purchase.cancel_requested.v1',
      body: event({ id: `evt-unknown-type-${run}`, type: 'stampede.purchase.refund_everyone.v1' }), reason: /^unknown event type stampede\.purchase\.refund_everyone\.v1$/, retried: false,
    },
    {
      // A negative price would credit the wallet instead of debiting it.
      name: 'a negative price', key: 'purchase.accepted.v1',
      body: event({ id: negativeId }, { purchaseId: negativeId, unitPrice: -5000 }), reason: /\S/, retried: 'either',
    },
    {
      name: 'an impossible time', key: 'purchase.accepted.v1',
      body: event({ id: `evt-bad-time-${run}`, time: 'yesterday' }, { purchaseId: badTimeId }), reason: /\S/, retried: 'either',
    },
    {
      // No retry can make the sale exist (UnknownSaleTermsError is a PermanentError).
      name: 'a purchase of a sale that does not exist', key: 'purchase.accepted.v1',
      body: event({ id: orphanId }, { purchaseId: orphanId, saleId: orphanSale }),
      reason: new RegExp(`^purchase ${orphanId}: sale ${orphanSale} unknown or its terms differ from the event's$`), retried: false,
    },
    {
      // Its id says it belongs to another sale: never settled against this one.
      name: 'a purchase id of another sale', key: 'purchase.accepted.v1',
      body: event({ id: `evt-stranger-${run}` }, { purchaseId: strangerId }), reason: NOT_EVENT, retried: false,
    },
    {
      name: 'a buyer id with a tab in it', key: 'purchase.accepted.v1',
      body: event({ id: `evt-tab-buyer-${run}` }, { buyerId: `usr_${run}\t` }), reason: NOT_EVENT, retried: false,
    },
  ];

  // Good purchases before, amid and after the poison.
  const before = await purchaseAll(sys, buyers.slice(0, 20), sale.id);
  await sys.drained(sale.id, 30_000);
  const amid = purchaseAll(sys, buyers.slice(20, 40), sale.id);
  for (const p of poison) {
    const props = { messageId: p.name, contentType: 'application/cloudevents+json' };
    await (p.key === '' ? amqp.sendToQueue(orders.queue, p.body, props) : amqp.publish(exchange, p.key, p.body, props));
  }
  const after = await purchaseAll(sys, buyers.slice(40), sale.id);
  const answers = [...before, ...(await amid), ...after];
  t.same(statusCounts(answers), { 202: N }, 'every good purchase accepted');
  await sys.drained(sale.id, 30_000);
  await amqp.quiet(Math.max(...retryDelaysMs) + 500, 30_000);

  // Every poison message, and only those, sits in the dead-letter queue.
  const depths = await amqp.depths();
  t.equal(depths[dlq], poison.length, `the ${poison.length} poison messages are dead-lettered`, { depths });
  // Poison routed by key reaches the webhooks queue too (purchase.accepted is public), whose worker parks it in its own .dlq.
  t.same(Object.entries(depths).filter(([q, n]) => !q.endsWith('.dlq') && n > 0), [], 'main and retry queues are empty');
  t.equal((await amqp.ch.checkQueue(orders.queue)).consumerCount, 1, 'the worker is still consuming');
  const dead = await amqp.take(dlq, depths[dlq]!);
  for (const m of dead) amqp.ch.nack(m, false, true); // leave them for an operator
  for (const p of poison) {
    const m = dead.find((d) => d.content.toString() === p.body);
    t.ok(m, `${p.name}: dead-lettered with its body intact`);
    if (!m) continue;
    const h = m.properties.headers ?? {};
    t.match(h['x-stampede-last-error'], p.reason, `${p.name}: says precisely why (${h['x-stampede-last-error']})`);
    t.match(h['x-stampede-dead-lettered-at'], /^\d{4}-\d\d-\d\dT/, `${p.name}: says when`);
    t.equal(m.properties.messageId, p.name, `${p.name}: keeps its properties`);
    const attempts = Number(h['x-stampede-attempt'] ?? 0);
    if (p.retried === 'either') t.ok(attempts === 0 || attempts === retryDelaysMs.length, `${p.name}: dead-lettered at once or after every retry tier (${attempts})`);
    else t.equal(attempts, p.retried ? retryDelaysMs.length : 0, p.retried ? `${p.name}: went through every retry tier first` : `${p.name}: not retried (it can never settle)`);
  }

  // The poison changed nothing: no order, no money moved for it.
  const { rows: stray } = await sys.pool.query('SELECT purchase_id FROM orders WHERE purchase_id = ANY($1) OR buyer_id = $2', [[negativeId, orphanId, strangerId, badTimeId], poisonBuyer]);
  t.same(stray, [], 'no order for any poison message');
  const { rows: strayEvents } = await sys.pool.query('SELECT event_id FROM purchase_events WHERE event_id = ANY($1) OR purchase_id = ANY($2)',
    [[negativeId, orphanId, `evt-bad-time-${run}`, `evt-poison-${run}`, `evt-no-buyer-${run}`, `evt-unknown-type-${run}`, `evt-stranger-${run}`, `evt-tab-buyer-${run}`],
      [negativeId, orphanId, strangerId, poisonId, badTimeId]]);
  t.same(strayEvents, [], 'no event logged for any poison message');
  t.same(await balanceHistogram(sys.pool, [poisonBuyer!]), [{ balance: 100_000, n: 1 }], 'the poison buyer was neither charged nor credited');
  const { rows: strayLedger } = await sys.pool.query(`SELECT ref FROM ledger_entries WHERE user_id = $1 AND kind <> 'credit'`, [poisonBuyer]);
  t.same(strayLedger, [], 'no ledger entry for any poison message');

  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.orders, N, `exactly ${N} orders`);
  t.equal(audit.confirmedOrders, N);
  t.equal(audit.purchaseDebits, N);
  t.same(audit.live, { stock: N, available: 0, reserved: 0, sold: N });
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: 100_000 - PRICE, n: N }], 'each good buyer charged once');
  t.same(await ledgerOfSale(sys.pool, sale.id), { purchase: N, refund: 0, sum: -N * PRICE });
});
