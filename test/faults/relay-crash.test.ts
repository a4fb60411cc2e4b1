/**
 * Fault: a relay read outbox entries and died before acknowledging them.
 * Some it had published and acknowledged, some it had published but not yet
 * acknowledged (the crash came between the broker's confirm and XACK), the
 * rest it had only read. Its pending entries must be reclaimed by another
 * relay (XAUTOCLAIM once they are idle STAMPEDE_RELAY_CLAIM_IDLE_MS, 1 s in
 * tests), every purchase must settle exactly once, and the outbox must be
 * trimmed only of acknowledged entries, down to empty at the end.
 *
 * The first test places the crash exactly (it plays the dead relay's part);
 * the second kills a real relay process wherever it is in its stream and
 * keeps buyers buying while no relay runs, so the outbox grows meanwhile.
 */
import t from 'tap';
import { boot, waitFor } from '../helpers/system.js';
import {
  assertSoldOnceEach, faultEnv, openAmqp, purchaseAll, spawnRole, statusCounts,
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

t.test('a relay process SIGKILLed mid-stream while buyers keep buying: the outbox grows, is trimmed only of acknowledged entries, and every purchase settles once', async (t) => {
  const sys = await boot(t, { worker: true, env: faultEnv() });
  const amqp = await openAmqp(t, sys.cfg);
  const sale = await sys.createSale({ stock: 3 * N, perBuyerLimit: 1, unitPrice: PRICE });
  const buyers = await sys.createBuyers(3 * N);
  const outbox = saleKeys.outbox(sale.id);
  const group = async () => {
    const [pending, oldest] = (await sys.redis.xpending(outbox, RELAY_GROUP)) as [number, string | null];
    return { pending, oldest, length: await sys.redis.xlen(outbox) };
  };

  // A real relay process publishes the first wave as it arrives...
  const relay = spawnRole(t, 'relay', faultEnv());
  const first = await purchaseAll(sys, buyers.slice(0, N), sale.id, 20);
  await waitFor('the relay to publish part of the first wave', async () => {
    if (relay.proc.exitCode !== null) throw new Error(`relay exited: ${relay.output()}`);
    return (await sys.redis.xlen(outbox)) < N || (await group()).pending > 0;
  }, 30_000, 2);
  // ...and is killed in the middle of its stream, whatever it was doing (reading, publishing, waiting for
  // the broker's confirm, acknowledging).
  relay.proc.kill('SIGKILL');
  t.equal((await relay.exited).signal, 'SIGKILL', 'relay killed');
  const atKill = await group();
  t.comment(`at the kill: ${atKill.pending} entries pending (read, not acknowledged), outbox length ${atKill.length}`);

  // With no relay, buyers keep buying: the outbox grows, and a trim (as any relay does after acknowledging)
  // drops nothing that is pending or unread.
  const second = await purchaseAll(sys, buyers.slice(N, 3 * N), sale.id, 50);
  const grown = await group();
  t.equal(grown.length, atKill.length + 2 * N, 'the outbox grew by every purchase made while the relay was down');
  const before = (await sys.redis.xrange(outbox, '-', '+')).map(([id]) => id);
  const [info] = ((await sys.redis.xinfo('GROUPS', outbox)) as (string | number)[][]).map((g) => Object.fromEntries(
    Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]])));
  const pendingIds = ((await sys.redis.xpending(outbox, RELAY_GROUP, '-', '+', 10 * N)) as [string][]).map(([id]) => id);
  await trimOutbox(sys.redis, outbox);
  const afterTrim = await sys.redis.xrange(outbox, '-', '+');
  const left = new Set(afterTrim.map(([id]) => id));
  const trimmed = before.filter((id) => !left.has(id));
  const seq = (id: string) => id.split('-').map(BigInt) as [bigint, bigint];
  const delivered = (id: string) => {
    const [a, b] = seq(id), [c, d] = seq(String(info!['last-delivered-id']));
    return a < c || (a === c && b <= d);
  };
  t.ok(trimmed.every((id) => delivered(id) && !pendingIds.includes(id)), `the trim dropped only delivered, acknowledged entries (${trimmed.length})`);
  t.equal(pendingIds.filter((id) => !left.has(id)).length, 0, `every pending entry is kept (${pendingIds.length})`);
  t.ok(afterTrim.length >= 2 * N + pendingIds.length, `every unread entry is kept (${afterTrim.length} left)`);
  t.same(statusCounts([...first, ...second]), { 202: 3 * N }, 'every purchase accepted');

  // A new relay reclaims what the dead one held and publishes the rest; every purchase settles once.
  await sys.startRelay();
  await sys.drained(sale.id, 45_000);
  await waitFor('the outbox to be acknowledged and trimmed', async () => {
    const g = await group();
    return g.pending === 0 && g.length === 0;
  }, 15_000);
  await amqp.quiet(600, 15_000);
  const depths = await amqp.depths();
  t.same(Object.values(depths), Object.values(depths).map(() => 0), 'main, retry and dead-letter queues are empty', { depths });
  await assertSoldOnceEach(t, sys, sale.id, buyers, PRICE, 100_000);
});
