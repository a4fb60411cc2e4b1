/**
 * A purchase event that contradicts its sale's terms (another price, another
 * currency) can never settle: settlement throws UnknownSaleTermsError, a
 * PermanentError, and the worker sends the message straight to the
 * dead-letter queue with that reason, without passing through the delay
 * tiers. The good events settled in the same batch are charged once; the bad
 * ones move no money and log nothing.
 */
import t from 'tap';
import { auditSale } from '../helpers/invariants.js';
import { balanceHistogram, startWorkers, ordersBench, soldToEach } from '../helpers/fault-kit.js';

import { ATTEMPT_HEADER } from '../../src/platform/messaging/consumer.js';
import { newPurchaseId } from '../../src/platform/ids.js';

const PRICE = 1000;

t.test('an event whose terms differ from its sale\'s is dead-lettered at once with its reason; the good events beside it settle', async (t) => {
  const { sys, amqp, exchange, orders, dlq } = await ordersBench(t);
  const N = 4;
  const { sale, buyers } = await soldToEach(t, sys, N, { unitPrice: PRICE });
  const [cheat] = await sys.createBuyers(1);

  // The relay's own events, captured before any worker runs, to publish one message each.
  const { messages, events } = await amqp.takeEvents(orders.queue, N);
  for (const m of messages) amqp.ch.ack(m);
  const good = events.map((e) => e.event);
  // Well formed in every way the worker checks alone (so not poison): only the sale's terms say they are wrong.
  const forged = (name: string, data: Record<string, unknown>) => {
    const purchaseId = newPurchaseId(sale.id);
    return {
      ...good[0], id: `evt-${name}-${purchaseId}`,
      data: { ...good[0].data, purchaseId, buyerId: cheat, acceptedAt: Date.now(), ...data },
    };
  };
  const bad = [forged('cheap', { unitPrice: 1 }), forged('dollars', { currency: 'USD' })];
  // Good and bad messages side by side, all waiting before the worker starts: it takes them together, and
  // a batch whose transaction fails on a bad one is settled again message by message.
  for (const e of [good[0], bad[0], ...good.slice(1, 3), bad[1], ...good.slice(3)]) {
    await amqp.publish(exchange, 'purchase.accepted.v1', JSON.stringify(e), { messageId: e.id, contentType: 'application/cloudevents+json' });
  }

  const stop = await startWorkers(sys, amqp, 1);
  await sys.drained(sale.id, 30_000);
  const dead = await amqp.take(dlq, bad.length, 30_000);
  await amqp.quiet(Math.max(...sys.cfg.topology.retryDelaysMs) + 500, 30_000);
  await stop();
  for (const m of dead) amqp.ch.ack(m);

  for (const e of bad) {
    const m = dead.find((d) => JSON.parse(d.content.toString()).id === e.id);
    t.ok(m, `${e.id}: dead-lettered with its body intact`);
    if (!m) continue;
    t.same(JSON.parse(m.content.toString()), e, `${e.id}: the body as it was published`);
    const h = m.properties.headers ?? {};
    t.equal(h['x-stampede-last-error'], `purchase ${e.data.purchaseId}: sale ${sale.id} unknown or its terms differ from the event's`, `${e.id}: says the terms differ`);
    t.match(h['x-stampede-dead-lettered-at'], /^\d{4}-\d\d-\d\dT/, `${e.id}: says when`);
    t.notOk(ATTEMPT_HEADER in h, `${e.id}: never retried (no ${ATTEMPT_HEADER} header)`);
    t.equal(m.properties.messageId, e.id, `${e.id}: keeps its properties`);
  }
  const depths = await amqp.depths();
  t.same(Object.entries(depths).filter(([, n]) => n > 0), [], 'nothing else dead-lettered or waiting in a retry tier', { depths });

  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.orders, N, 'an order for each good event, none for the bad ones');
  t.equal(audit.confirmedOrders, N, 'every good event settled');
  t.equal(audit.purchaseDebits, N, 'and was charged once');
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: 100_000 - PRICE, n: N }], 'each good buyer charged once');
  t.same(await balanceHistogram(sys.pool, [cheat!]), [{ balance: 100_000, n: 1 }], 'the bad events moved no money');
  const { rows } = await sys.pool.query('SELECT event_id FROM purchase_events WHERE event_id = ANY($1) OR purchase_id = ANY($2)',
    [bad.map((e) => e.id), bad.map((e) => e.data.purchaseId)]);
  t.same(rows, [], 'and logged nothing');
});
