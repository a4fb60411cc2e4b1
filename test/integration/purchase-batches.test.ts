/**
 * Purchases decided per sale per event-loop turn: the purchases a node makes
 * of one sale in one turn go to Redis as one reservePurchases call, each
 * answered as if alone; a call Redis refuses fails each of its purchases
 * the way a call of one would; and many buyers buying at once over HTTP are
 * answered right and settle.
 */
import t, { type Test } from 'tap';
import { boot } from '../helpers/system.js';
import { auditSale } from '../helpers/invariants.js';
import { scrape } from '../helpers/metrics.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { observeScripts } from '../../src/platform/redis/functions.js';
import { AppError } from '../../src/platform/errors.js';
import { Purchases, MAX_PURCHASES_PER_CALL } from '../../src/sales/purchases.js';
import { Sales } from '../../src/sales/sales.js';
import { saleKeys } from '../../src/sales/keys.js';
import { readLiveSale } from '../../src/sales/scripts.js';

const limits = { rateMax: 100, rateWindowMs: 1000, idempotencyTtlMs: 60_000, soldOutCacheMs: 0 };

/** A client of its own whose script calls are counted (name, and how many decisions each answered). */
function countedRedis(t: Test, url: string) {
  const redis = createRedis(url, { name: 'purchase-batches' });
  t.teardown(() => redis.quit());
  const calls: { script: string; decisions: number }[] = [];
  observeScripts(redis, (script, reply) => calls.push({ script, decisions: Array.isArray(reply) ? reply.length : 0 }));
  return { redis, calls };
}

const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 202 : r.reason instanceof AppError ? r.reason.code : String(r.reason));

t.test('the purchases of one sale made in one turn are decided by one call, each answered as if alone', async (t) => {
  const sys = await boot(t, { api: false });
  const { redis, calls } = countedRedis(t, sys.cfg.STAMPEDE_REDIS_URL);
  const purchases = new Purchases(redis, new Sales(sys.pool, redis), limits);
  const sale = await sys.createSale({ stock: 5, perBuyerLimit: 1 });
  const other = await sys.createSale({ stock: 5, perBuyerLimit: 1 });
  const buyers = await sys.createBuyers(8);
  calls.length = 0;
  // Eight buyers, the first of them twice, and one purchase of another sale: all in this turn.
  const results = await Promise.allSettled([
    ...buyers.map((b) => purchases.purchase(b, sale.id, 1, undefined)),
    purchases.purchase(buyers[0]!, sale.id, 1, undefined),
    purchases.purchase(buyers[0]!, other.id, 1, undefined),
  ]);
  t.same(results.map(codeOf), [202, 202, 202, 202, 202, 'SOLD_OUT', 'SOLD_OUT', 'SOLD_OUT', 'PURCHASE_IN_PROGRESS', 202],
    'stock, the in-flight rule and the other sale decided per purchase, in order');
  t.same(calls, [{ script: 'reservePurchases', decisions: 9 }, { script: 'reservePurchases', decisions: 1 }], 'one call per sale');
  t.same(await readLiveSale(redis, sale.id), { status: 'open', stock: 5, available: 0, reserved: 5, sold: 0 });
  t.equal(await redis.xlen(saleKeys.outbox(sale.id)), 5, 'one outbox entry per accepted purchase');

  // More than a call takes: the rest go in further calls of the same turn.
  const big = await sys.createSale({ stock: 100, perBuyerLimit: 1 });
  const many = await sys.createBuyers(MAX_PURCHASES_PER_CALL + 3);
  calls.length = 0;
  const all = await Promise.allSettled(many.map((b) => purchases.purchase(b, big.id, 1, undefined)));
  t.ok(all.every((r) => r.status === 'fulfilled'), 'each accepted');
  t.same(calls.map((c) => c.decisions), [MAX_PURCHASES_PER_CALL, 3]);
});

t.test('a call Redis refuses fails every purchase of its batch with the same error, and writes nothing', async (t) => {
  const sys = await boot(t, { api: false });
  const { redis } = countedRedis(t, sys.cfg.STAMPEDE_REDIS_URL);
  const purchases = new Purchases(redis, new Sales(sys.pool, redis), limits);
  const sale = await sys.createSale({ stock: 5, perBuyerLimit: 1 });
  const buyers = await sys.createBuyers(3);
  await redis.set(saleKeys.outbox(sale.id), 'not a stream');
  const before = await readLiveSale(redis, sale.id);
  const results = await Promise.allSettled(buyers.map((b) => purchases.purchase(b, sale.id, 1, undefined)));
  t.ok(results.every((r) => r.status === 'rejected'), 'each purchase fails');
  const messages = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : ''));
  t.match(messages[0], /reservePurchases: .*outbox.* string/, 'the error names the script and the key');
  t.same(new Set(messages).size, 1, 'the same error for each');
  t.same(await readLiveSale(redis, sale.id), before, 'no counter moved');
  t.equal(await redis.hlen(saleKeys.inflight(sale.id)), 0, 'nothing in flight');
});

t.test('many buyers at once over HTTP, some twice (limit 1): each answered right, every acceptance settles', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 150, perBuyerLimit: 1, unitPrice: 1000 });
  const buyers = await sys.createBuyers(300);
  const before = await scrape(`${sys.url}/metrics`);
  const twice = buyers.slice(0, 50);
  const answers = await Promise.all([...buyers, ...twice].map((b) => sys.purchase(b, sale.id)));
  const after = await scrape(`${sys.url}/metrics`);
  const byCode = new Map<string, number>();
  for (const a of answers) {
    const code = a.status === 202 ? '202' : `${a.status} ${a.body.code}`;
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }
  t.equal(byCode.get('202'), 150, 'exactly the stock accepted');
  t.same([...byCode.keys()].filter((c) => c !== '202' && c !== '409 SOLD_OUT' && c !== '409 PURCHASE_IN_PROGRESS' && c !== '409 LIMIT_REACHED'), [],
    'every refusal is sold out, in progress or at the limit');
  const accepted = new Map<string, number>();
  [...buyers, ...twice].forEach((b, i) => {
    if (answers[i]!.status === 202) accepted.set(b, (accepted.get(b) ?? 0) + 1);
  });
  t.ok([...accepted.values()].every((n) => n === 1), 'nobody bought past the limit of 1');
  const decisions = after.value('stampede_script_decisions_total', { script: 'reservePurchases', outcome: 'applied' }) -
    before.value('stampede_script_decisions_total', { script: 'reservePurchases', outcome: 'applied' });
  t.equal(decisions, 150, 'each acceptance counted once');

  await sys.drained(sale.id);
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.confirmedOrders, 150, 'every accepted purchase confirmed');
  t.equal(audit.purchaseDebits, 150, 'one debit each');
  t.same(audit.live, { stock: 150, available: 0, reserved: 0, sold: 150 });
});
