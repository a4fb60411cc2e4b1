/**
 * Hot sales across shards (src/sales/shards.ts), against the real services
 * (and, in npm run test:cluster, a 3-master Redis Cluster, where the shards
 * are in different slots): a sale of K shards sells exactly its stock to
 * concurrent buyers and no more, each buyer in their own shard and within
 * their limit; a shard that runs dry is refilled from the others, so "sold
 * out" means every shard is empty; a transfer of stock between shards that
 * stops half way (the mover crashed) loses no unit and, completed by the
 * sweep or by two completers at once, adds none twice; the sale is told sold
 * out once; a Redis that lost the sale loads it again, shard by shard.
 */
import t from 'tap';
import { boot, call, flushRedis, OPERATOR_KEY, waitFor } from '../helpers/system.js';
import { auditSale } from '../helpers/invariants.js';
import { saleKeys } from '../../src/sales/keys.js';
import { readLiveSale } from '../../src/sales/scripts.js';
import {
  announceIfSoldOut, completeTransfersFrom, MAX_SHARDS, moveStock, readShards, shardKeyOf, shardOfBuyer, splitStock, transfersInTransit,
} from '../../src/sales/shards.js';
import { shardOfPurchase } from '../../src/platform/ids.js';
import { auditLiveSale } from '../../src/sales/audit.js';
import { Sales } from '../../src/sales/sales.js';

const K = 3;

t.test('shardOfBuyer is stable and spreads buyers; splitStock splits evenly and adds up', async (t) => {
  const counts = new Array(K).fill(0) as number[];
  for (let i = 0; i < 3000; i++) counts[shardOfBuyer(`usr_${i.toString(36).padStart(12, '0')}`, K)]! += 1;
  t.ok(counts.every((n) => n > 800 && n < 1200), `3,000 buyers spread over ${K} shards: ${counts.join(', ')}`);
  t.equal(shardOfBuyer('usr_abcdefabcdef', K), shardOfBuyer('usr_abcdefabcdef', K));
  t.equal(shardOfBuyer('usr_abcdefabcdef', 1), 0, 'an unsharded sale has shard 0 only');
  t.same(splitStock(10, 3), [4, 3, 3]);
  t.same(splitStock(2, 3), [1, 1, 0]);
  t.equal(MAX_SHARDS, 16);
});

t.test(`a sale of ${K} shards, 90 units, 400 concurrent buyers: exactly 90 accepted and settled, sold out everywhere, told once`, async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 90, perBuyerLimit: 1, unitPrice: 1000, shards: K });
  t.equal(sale.shards, K);
  const rows = await readShards(sys.redis, sale.id, K);
  t.same(rows?.map((r) => r.stock), [30, 30, 30], 'the stock is split across the shards');
  const buyers = await sys.createBuyers(400);
  const answers = await Promise.all(buyers.map((b) => sys.purchase(b, sale.id)));
  const accepted = answers.map((a, i) => ({ a, buyer: buyers[i]! })).filter(({ a }) => a.status === 202);
  t.equal(accepted.length, 90, 'every unit sold: the shards that ran dry were refilled from the others');
  t.equal(answers.filter((a) => a.status === 409 && a.body.code === 'SOLD_OUT').length, 310, 'everyone else told SOLD_OUT');
  t.ok(accepted.every(({ a, buyer }) => shardOfPurchase(a.body.purchaseId) === shardOfBuyer(buyer, K)), "each purchase was decided in its buyer's shard, and its id names it");
  t.same((await auditLiveSale(sys.redis, sale.id, 1)).violations, [], 'the live invariants hold across the shards');

  await sys.drained(sale.id);
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.confirmedOrders, 90, '90 orders in Postgres');
  t.same(audit.live, { stock: 90, available: 0, reserved: 0, sold: 90 });
  await waitFor('the sale to be announced sold out', async () => (await sys.redis.hget(saleKeys.sale(sale.id), 'soldOutAnnounced')) === '90', 10_000);
  t.notOk(await announceIfSoldOut(sys.redis, sale.id, K), 'announced once: a second call changes nothing');

  const view = await call(`${sys.url}/v1/sales/${sale.id}`);
  t.match(view.body, { shards: K, live: { stock: 90, available: 0, reserved: 0, sold: 90 } }, "the sale's view sums its shards");
  const { buyer, a } = accepted[0]!;
  const status = await waitFor('the purchase confirmed', async () => {
    const r = await call(`${sys.url}/v1/purchases/${a.body.purchaseId}`, { headers: { authorization: `Bearer ${sys.token(buyer)}` } });
    return r.body.status === 'confirmed' ? r.body : undefined;
  });
  t.match(status, { saleId: sale.id, status: 'confirmed' }, "GET finds a shard's purchase and names the sale");
});

t.test("buyers all of one shard buy the whole stock: their shard is refilled from the others, for a quantity larger than any one donor holds too", async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 30, perBuyerLimit: 3, shards: K });
  const ofShard0 = (await sys.createBuyers(300)).filter((b) => shardOfBuyer(b, K) === 0);
  t.ok(ofShard0.length >= 40, `${ofShard0.length} buyers, all deciding in shard 0`);
  const first = await Promise.all(ofShard0.slice(0, 26).map((b) => sys.purchase(b, sale.id)));
  t.equal(first.filter((a) => a.status === 202).length, 26, "26 units bought by shard 0's buyers: shard 0 held 10 of them");
  await sys.drained(sale.id);
  const left = await readShards(sys.redis, sale.id, K);
  t.equal(left!.reduce((n, r) => n + r.available, 0), 4, '4 units left, spread over the shards');
  // Take shard 0's remaining units first, so the next buyer needs units from two other shards at once.
  await moveStock(sys.redis, sale.id, 0, 1, 100);
  await moveStock(sys.redis, sale.id, 2, 1, 100);
  await moveStock(sys.redis, sale.id, 1, 2, 2);
  t.same((await readShards(sys.redis, sale.id, K))!.map((r) => r.available), [0, 2, 2], 'two units in each other shard');
  const three = await sys.purchase(ofShard0[30]!, sale.id, { quantity: 3 });
  t.equal(three.status, 202, 'a purchase of 3 is refilled from both other shards');
  const last = await sys.purchase(ofShard0[31]!, sale.id);
  t.equal(last.status, 202, 'the last unit too');
  const none = await sys.purchase(ofShard0[32]!, sale.id);
  t.match(none, { status: 409, body: { code: 'SOLD_OUT' } }, 'then the sale is sold out: every shard empty');
  await sys.drained(sale.id);
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 3);
  t.same(audit.violations, []);
  t.same(audit.live, { stock: 30, available: 0, reserved: 0, sold: 30 });
});

t.test('per-buyer limits are exact, and a cancel in a shard puts the unit back there', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 30, perBuyerLimit: 2, shards: K });
  const [buyer] = await sys.createBuyers(1);
  const shard = shardOfBuyer(buyer!, K);
  const first = await sys.purchase(buyer!, sale.id);
  t.equal(first.status, 202);
  await sys.drained(sale.id);
  t.equal((await sys.purchase(buyer!, sale.id)).status, 202);
  await sys.drained(sale.id);
  const third = await sys.purchase(buyer!, sale.id);
  t.match(third, { status: 409, body: { code: 'LIMIT_REACHED' } }, 'the third is refused: the limit is counted in one shard');
  t.equal(Number(await sys.redis.hget(saleKeys.bought(shardKeyOf(sale.id, shard)), buyer!)), 2);

  const before = (await readShards(sys.redis, sale.id, K))![shard]!;
  const cancel = await call(`${sys.url}${first.body.statusUrl}`, { method: 'DELETE', headers: { authorization: `Bearer ${sys.token(buyer!)}` } });
  t.equal(cancel.status, 202, "the buyer cancels a purchase of their shard");
  await waitFor('the cancellation settled', async () => (await readShards(sys.redis, sale.id, K))![shard]!.available === before.available + 1, 15_000);
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 2);
  t.same(audit.violations, [], 'no invariant broken');
  t.same(audit.live, { stock: 30, available: 29, reserved: 0, sold: 1 });
});

t.test('a transfer that stops half way loses nothing; the sweep and two completers at once complete it exactly once', async (t) => {
  const sys = await boot(t);
  const sale = await sys.createSale({ stock: 30, perBuyerLimit: 1, shards: K });
  const moved = await moveStock(sys.redis, sale.id, 0, 2, 6, true);
  t.equal(moved, 6, 'taken off shard 0, then the mover "crashed"');
  t.same((await readShards(sys.redis, sale.id, K))!.map((r) => r.stock), [4, 10, 10], 'shard 2 has not received it');
  t.match(await transfersInTransit(sys.redis, sale.id, K), [{ id: /^t_/, from: 0, to: 2, units: 6 }], 'the log holds it in transit');
  t.same((await auditLiveSale(sys.redis, sale.id, 1)).violations, [], 'no invariant broken meanwhile: units in transit are counted');
  t.match(await readLiveSale(sys.redis, sale.id), { stock: 30, available: 30 }, 'the sale still has its 30 units');

  const done = await Promise.all([completeTransfersFrom(sys.redis, sale.id), completeTransfersFrom(sys.redis, sale.id)]);
  t.ok(done.every((n) => n <= 1), `two completers at once (${done.join(', ')})`);
  t.same((await readShards(sys.redis, sale.id, K))!.map((r) => r.stock), [4, 10, 16], 'the 6 units arrived once');
  t.same(await transfersInTransit(sys.redis, sale.id, K), [], 'nothing in transit');
  t.equal(await completeTransfersFrom(sys.redis, sale.id), 0, 'completing again changes nothing');

  // A mover that stopped after the arrival, before dropping the source's entry: not in transit, not counted twice.
  await moveStock(sys.redis, sale.id, 1, 0, 2);
  const lingering = `t_${'l'.repeat(16)}`;
  await sys.redis.hset(saleKeys.transfers(shardKeyOf(sale.id, 1)), lingering, '3 2 out');
  await sys.redis.hset(saleKeys.transfers(shardKeyOf(sale.id, 2)), lingering, '3 1 in 1');
  t.same(await transfersInTransit(sys.redis, sale.id, K), [], 'an arrived transfer whose source entry lingers is not in transit');
  t.same((await auditLiveSale(sys.redis, sale.id, 1)).violations, [], 'nor counted twice');
  await completeTransfersFrom(sys.redis, shardKeyOf(sale.id, 1));
  t.equal(await sys.redis.hexists(saleKeys.transfers(shardKeyOf(sale.id, 1)), lingering), 0, "the sweep drops the lingering source entry, adding nothing");
  await completeTransfersFrom(sys.redis, shardKeyOf(sale.id, 2));
  t.equal(await sys.redis.hexists(saleKeys.transfers(shardKeyOf(sale.id, 2)), lingering), 0, 'and an arrival older than an hour');
  t.same((await readShards(sys.redis, sale.id, K))!.map((r) => r.stock), [6, 8, 16]);

  // A second crash, completed by the scheduler's sweep (src/sales/deadline.ts).
  await moveStock(sys.redis, sale.id, 2, 1, 10, true);
  const { deadline } = await sys.startScheduler();
  await deadline.sweep();
  t.same((await readShards(sys.redis, sale.id, K))!.map((r) => r.stock), [6, 18, 6], 'the sweep completed it');
  t.same((await auditLiveSale(sys.redis, sale.id, 1)).violations, []);
  t.match(await readLiveSale(sys.redis, sale.id), { stock: 30, available: 30, reserved: 0, sold: 0 });
  t.equal(await moveStock(sys.redis, sale.id, 0, 1, 100), 6, 'a transfer takes at most what the source has');
  t.equal(await moveStock(sys.redis, sale.id, 0, 1, 1), 0, 'and nothing from an empty shard');
});

t.test("a Redis that lost a sharded sale, or one shard of it, loads it again shard by shard, with each buyer's holding in their shard", async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 20, perBuyerLimit: 1, shards: K });
  const buyers = await sys.createBuyers(12);
  const answers = await Promise.all(buyers.map((b) => sys.purchase(b, sale.id)));
  t.equal(answers.filter((a) => a.status === 202).length, 12);
  await sys.drained(sale.id);
  await flushRedis(sys.redis);
  t.ok(await new Sales(sys.pool, sys.redis).ensureLoaded(sale.id), 'loaded again from Postgres');
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken: every buyer in their shard, the shards add up to the stock');
  t.same(audit.live, { stock: 20, available: 8, reserved: 0, sold: 12 });
  const again = await Promise.all(buyers.slice(0, 3).map((b) => sys.purchase(b, sale.id)));
  t.ok(again.every((a) => a.status === 409 && a.body.code === 'LIMIT_REACHED'), 'a buyer who bought is still at their limit');

  // One shard lost alone (its cluster node's data gone), the others live: the next purchase there loads it back.
  const lost = shardKeyOf(sale.id, 1);
  const before = await readShards(sys.redis, sale.id, K);
  for (const key of [saleKeys.sale(lost), saleKeys.bought(lost), saleKeys.inflight(lost), saleKeys.transfers(lost)]) await sys.redis.del(key);
  const [newcomer] = (await sys.createBuyers(40)).filter((b) => shardOfBuyer(b, K) === 1);
  const bought = await sys.purchase(newcomer!, sale.id);
  t.equal(bought.status, 202, "a buyer of the lost shard buys: the shard was loaded again");
  const after = await readShards(sys.redis, sale.id, K);
  t.same([after![0], after![2]], [before![0], before![2]], 'the living shards were not touched');
  t.equal(after!.reduce((n, r) => n + r.stock, 0), 20, "the lost shard's stock is what the sale's stock less the others' is");
  await sys.drained(sale.id);
  const audit2 = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit2.violations, [], 'no invariant broken');
  t.same(audit2.live, { stock: 20, available: 7, reserved: 0, sold: 13 });
});

t.test('creating a sharded sale: the count is bounded, a private sale has one shard', async (t) => {
  const sys = await boot(t);
  const [buyer] = await sys.createBuyers(1);
  const now = Date.now();
  const body = {
    name: 'Hot drop', sku: 'HOT-1', unitPrice: 1000, currency: 'EUR', stock: 10, perBuyerLimit: 1,
    startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 3600_000).toISOString(),
  };
  const post = (extra: Record<string, unknown>) => call(`${sys.url}/v1/sales`, {
    method: 'POST', headers: { 'x-api-key': OPERATOR_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ ...body, ...extra }),
  });
  for (const shards of [0, 17, 2.5, '3']) {
    const r = await post({ shards });
    t.equal(r.status, 400, `shards ${JSON.stringify(shards)} refused`);
    t.match(r.headers.get('content-type'), /application\/problem\+json/);
  }
  const priv = await post({ shards: 2, eligibleBuyers: [buyer] });
  t.match(priv, { status: 400, body: { code: 'VALIDATION' } }, 'a private sale is not split');
  t.match(JSON.stringify(priv.body), /private sale is not split/);
  const ok = await post({ shards: MAX_SHARDS });
  t.match(ok, { status: 201, body: { shards: MAX_SHARDS, live: { stock: 10, available: 10 } } }, `${MAX_SHARDS} shards, fewer units than shards: fine`);
  const one = await post({});
  t.match(one.body, { shards: 1 }, 'absent: one');
});
