/**
 * Fault: a relay read outbox entries and died before acknowledging them.
 * Some it had published and acknowledged, some it had published but not yet
 * acknowledged (the crash came between the broker's confirm and XACK), the
 * rest it had only read. Its pending entries must be reclaimed by another
 * relay (XAUTOCLAIM once they are idle STAMPEDE_RELAY_CLAIM_IDLE_MS, 1 s in
 * tests), every purchase must settle exactly once, and the outbox must be
 * trimmed only of acknowledged entries, down to empty at the end.
 */
import t from 'tap';
import { boot, waitFor } from '../helpers/system.js';
import {
  assertSoldOnceEach, faultEnv, openAmqp, purchaseAll, statusCounts,
} from '../helpers/fault-kit.js';
import { saleKeys } from '../../src/sales/keys.js';
import { RELAY_GROUP } from '../../src/platform/messaging/outbox.js';
import { trimOutbox } from '../../src/platform/messaging/outbox.js';
import { cloudEventJson, outboxEntryOf } from '../../src/platform/messaging/events.js';
import { routingKeyOf } from '../../src/platform/messaging/topology.js';

const N = 200;
const PRICE = 1000;
const DEAD = 'dead-relay';

t.test('entries a dead relay read but never acknowledged are reclaimed and settled once', async (t) => {
  // api only: no relay, no worker yet.
  const sys = await boot(t, { env: faultEnv() });
  const amqp = await openAmqp(t, sys.cfg);
  const { exchange } = sys.cfg.topology;
  const sale = await sys.createSale({ stock: N, perBuyerLimit: 1, unitPrice: PRICE });
  const buyers = await sys.createBuyers(N);
  const answers = await purchaseAll(sys, buyers, sale.id);
  t.same(statusCounts(answers), { 202: N }, 'every purchase accepted');
  const outbox = saleKeys.outbox(sale.id);
  t.equal(await sys.redis.xlen(outbox), N, 'the outbox holds every purchase');

  // The dead relay: reads 150 entries as consumer `dead-relay` of the relay group...
  const reply = (await sys.redis.xreadgroup('GROUP', RELAY_GROUP, DEAD, 'COUNT', 150, 'STREAMS', outbox, '>')) as [string, [string, string[]][]][];
  const read = reply[0]![1].map(([id, fields]) => outboxEntryOf(outbox, id, fields));
  t.equal(read.length, 150);
  // ...publishes the first 80 exactly as the relay does, acknowledges the first 50 of them
  // (and trims, as the relay does after acknowledging), then dies: 30 published but not
  // acknowledged, 70 only read.
  for (const e of read.slice(0, 80)) {
    await amqp.publish(exchange, routingKeyOf(e.type), cloudEventJson(e, `stampede:${e.stream}`), {
      messageId: e.id, type: e.type, contentType: 'application/cloudevents+json', timestamp: Math.floor(e.time / 1000),
    });
  }
  await sys.redis.xack(outbox, RELAY_GROUP, ...read.slice(0, 50).map((e) => e.streamId));
  const trimmed = await trimOutbox(sys.redis, outbox);
  t.equal(trimmed, 50, 'trimming drops exactly the acknowledged entries before the oldest pending one');
  t.equal(await sys.redis.xlen(outbox), N - 50, 'pending and unread entries are kept');
  const [pending, , , owners] = (await sys.redis.xpending(outbox, RELAY_GROUP)) as [number, string, string, [string, string][]];
  t.equal(pending, 100, '100 entries pending');
  t.same(owners, [[DEAD, '100']], 'all owned by the dead relay');

  // A real relay and a worker start. The relay reads the 50 never-read entries at once and
  // reclaims the dead relay's 100 once they have been idle for the claim period.
  const claimStart = Date.now();
  await sys.startRelay();
  await sys.startWorker();
  await sys.drained(sale.id, 30_000);
  t.comment(`settled ${Date.now() - claimStart} ms after the relay started`);

  const { rows: [x] } = await sys.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE sale_id = $1', [sale.id]);
  t.equal(x!.n, N, `all ${N} purchases settled`);

  // Everything acknowledged, nobody owns anything, and the relay trimmed the stream to nothing.
  await waitFor('the outbox to be acknowledged and trimmed', async () => {
    const [p] = (await sys.redis.xpending(outbox, RELAY_GROUP)) as [number];
    return p === 0 && (await sys.redis.xlen(outbox)) === 0;
  }, 10_000);
  const consumers = (await sys.redis.xinfo('CONSUMERS', outbox, RELAY_GROUP)) as (string | number)[][];
  const deadInfo = consumers.map((c) => Object.fromEntries(Array.from({ length: c.length / 2 }, (_, i) => [c[2 * i], c[2 * i + 1]]))).find((c) => c.name === DEAD);
  t.equal(deadInfo?.pending, 0, 'the dead relay owns nothing any more');
  await amqp.quiet(600, 15_000);
  const depths = await amqp.depths();
  t.same(Object.values(depths), Object.values(depths).map(() => 0), 'main, retry and dead-letter queues are empty', { depths });

  await assertSoldOnceEach(t, sys, sale.id, buyers, PRICE, 100_000);
});
