/**
 * Fault: an orders worker is killed with SIGKILL in the middle of the stream
 * (some batches committed, some committed but not yet acked or applied to
 * Redis, the rest still queued), twice, then another worker takes over. Every
 * accepted purchase must be settled exactly once: one order, one debit, the
 * right balance, Redis sold == Postgres confirmed.
 */
import t from 'tap';
import { boot, sleep, waitFor } from '../helpers/system.js';
import {
  assertSoldOnceEach, faultEnv, openAmqp, orderCount, purchaseAll, spawnRole, statusCounts,
} from '../helpers/fault-kit.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';
import { saleKeys } from '../../src/sales/keys.js';

const TOTAL = 3_000;
const PRICE = 1000;
const FUNDS = 100_000;

t.test(`a worker SIGKILLed mid-stream, twice: all ${TOTAL} accepted purchases settled exactly once`, async (t) => {
  // api + relay in-process, no worker: the queue fills.
  const t0 = Date.now();
  // One event per message: this test counts messages through the kills (the
  // relay's batching is proven by the redelivery tests).
  const sys = await boot(t, { relay: true, env: faultEnv({ STAMPEDE_RELAY_EVENTS_PER_MESSAGE: '1' }) });
  const amqp = await openAmqp(t, sys.cfg);
  const queue = sys.cfg.topology.orders.queue;
  const sale = await sys.createSale({ stock: TOTAL, perBuyerLimit: 1, unitPrice: PRICE });
  const buyers = await sys.createBuyers(TOTAL, { currency: 'EUR', amount: FUNDS });
  t.same(statusCounts(await purchaseAll(sys, buyers, sale.id)), { 202: TOTAL }, 'every purchase accepted');
  t.comment(`purchases answered after ${Date.now() - t0} ms`);
  let depth = 0;
  await waitFor('the relay to publish every purchase', async () => (depth = await amqp.depth(queue)) >= TOTAL, 30_000).catch((err) => {
    throw new Error(`${(err as Error).message} (queue depth ${depth})`);
  });
  if (depth !== TOTAL) {
    // Say what the extra messages are before failing: duplicates of ours, or another run's sale?
    const all = await amqp.take(queue, depth);
    const events = all.map((m) => JSON.parse(m.content.toString()) as { id: string; data: { saleId: string } });
    t.comment(`queue holds ${depth} messages: ${new Set(events.map((e) => e.id)).size} distinct event ids, sales ${[...new Set(events.map((e) => e.data.saleId))]} (ours ${sale.id})`);
    for (const m of all) amqp.ch.nack(m, false, true);
  }
  t.equal(depth, TOTAL, 'the relay published each purchase once');
  t.equal(await orderCount(sys.pool, sale.id), 0, 'nothing settled without a worker');
  t.comment(`queue filled after ${Date.now() - t0} ms`);

  // Small batches and prefetch window: many transactions, so the kill lands mid-stream.
  const childEnv = faultEnv({ STAMPEDE_WORKER_BATCH: '50', STAMPEDE_WORKER_PREFETCH: '200' });
  let last = 0;
  for (const round of [1, 2]) {
    const child = spawnRole(t, 'worker', childEnv);
    const seen = await waitFor(`round ${round}: the child worker to settle something`, async () => {
      if (child.proc.exitCode !== null) throw new Error(`worker exited early: ${child.output()}`);
      const n = await orderCount(sys.pool, sale.id);
      // Past a few batches of this round, well short of the end.
      return n >= last + 300 ? n : undefined;
    }, 30_000, 2);
    child.proc.kill('SIGKILL');
    const exit = await child.exited;
    t.equal(exit.signal, 'SIGKILL', `round ${round}: worker killed (saw ${seen} orders)`);
    // A transaction whose COMMIT was on the wire may still land; after that, nothing moves.
    await sleep(300);
    const after = await orderCount(sys.pool, sale.id);
    t.ok(after > last && after < TOTAL, `round ${round}: killed mid-stream (${after} of ${TOTAL} settled)`);
    await sleep(200);
    t.equal(await orderCount(sys.pool, sale.id), after, `round ${round}: nothing settles while no worker runs`);
    // The broker hands the dead worker's unacked messages back to the queue.
    const requeued = await waitFor('the unacked messages to be requeued', async () => {
      const q = await amqp.ch.checkQueue(queue);
      return q.consumerCount === 0 && q.messageCount + after >= TOTAL ? q.messageCount : undefined;
    }, 10_000);
    t.comment(`round ${round}: ${after} orders settled, ${requeued} messages back in the queue (${requeued + after - TOTAL} of them already settled: redeliveries)`);
    last = after;
  }

  // A worker again (in-process this time) finishes the job.
  t.comment(`crashes done after ${Date.now() - t0} ms`);
  await sys.startWorker();
  await sys.drained(sale.id, 45_000);
  await amqp.quiet(600, 30_000);

  t.comment(`drained after ${Date.now() - t0} ms`);
  await assertSoldOnceEach(t, sys, sale.id, buyers, PRICE, FUNDS);
  const { rows: [ev] } = await sys.pool.query<{ n: number; ids: number }>(
    'SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS ids FROM purchase_events WHERE sale_id = $1', [sale.id],
  );
  t.same(ev, { n: TOTAL, ids: TOTAL }, 'the event log holds each event once');
  const inflight = await sys.redis.hlen(saleKeys.inflight(sale.id));
  t.equal(inflight, 0, 'no buyer left in flight');
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.orders)), 0, 'nothing dead-lettered');
});
