/**
 * The relay sends runs of events as CloudEvents batches. One poisonous event
 * inside a batch must not hold its neighbours back: they settle, and it
 * alone goes to the dead-letter queue, as a message of its own, with its
 * reason.
 */
import t from 'tap';
import { auditSale } from '../helpers/invariants.js';
import { eventsIn, startWorkers, ordersBench, soldToEach } from '../helpers/fault-kit.js';

t.test('a poisonous event in a batch goes to the dead-letter queue alone; the rest of the batch settles', async (t) => {
  const { sys, amqp, exchange, orders, dlq } = await ordersBench(t);
  const N = 6;
  const { sale, buyers } = await soldToEach(t, sys, N);

  // The relay's own messages, captured before any worker runs.
  const { messages, events } = await amqp.takeEvents(orders.queue, N);
  t.ok(messages.some((m) => eventsIn(m).length > 1), 'the relay sent a batch');
  for (const m of messages) amqp.ch.ack(m);

  // One batch: the real events with a negative-price copy and a non-event in the middle.
  const good = events.map((e) => e.event);
  const negative = { ...good[0], id: `evt-negative-${sale.id}`, data: { ...good[0].data, purchaseId: `pur_negative_${sale.id}`, unitPrice: -1000 } };
  const batch = [...good.slice(0, 3), negative, 42, ...good.slice(3)];
  await amqp.publish(exchange, 'purchase.accepted.v1', JSON.stringify(batch), {
    messageId: `${good[0].id}+${batch.length - 1}`, contentType: 'application/cloudevents-batch+json',
  });

  const stop = await startWorkers(sys, amqp, 1);
  await sys.drained(sale.id, 30_000);
  const dead = await amqp.take(dlq, 2, 30_000);
  await stop();
  for (const m of dead) amqp.ch.ack(m);

  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.confirmedOrders, N, 'every good event of the batch settled');
  t.equal(audit.purchaseDebits, N, 'and was charged once');
  const bodies = dead.map((m) => JSON.parse(m.content.toString()));
  t.same(bodies.map((b) => (typeof b === 'object' ? b.id : b)).sort(), [42, negative.id].sort(), 'each poison element alone, its body intact');
  for (const m of dead) {
    t.match(String(m.properties.headers?.['x-stampede-last-error']), /purchase event/, 'with the reason');
  }
  t.equal(await amqp.depth(dlq), 0, 'nothing else dead-lettered');
  const { rows } = await sys.pool.query('SELECT count(*)::int AS n FROM orders WHERE purchase_id = $1', [negative.data.purchaseId]);
  t.equal(rows[0].n, 0, 'the poisonous event moved no money');
});
