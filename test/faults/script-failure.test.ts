/**
 * Fault: a decision script fails half-way, because a key it touches holds
 * another type than it expects (or a counter holds no number): damage from an
 * operator's redis-cli, a bug of another release, a restore gone wrong.
 * Redis does not undo a script's writes when it fails, so every script reads
 * and checks everything first and writes last: a failing call must leave
 * every key of the sale or auction exactly as it was (compared with DUMP,
 * value by value), name the script and the key in its error, and the api
 * answer 500 problem+json without details, log the error, and keep serving
 * every other buyer.
 */
import t, { type Test } from 'tap';
import { createRedis, type Redis } from '../../src/platform/redis/client.js';
import { newUserId } from '../../src/platform/ids.js';
import { Outcome } from '../../src/platform/redis/outcomes.js';
import { saleKeys } from '../../src/sales/keys.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { readLiveSale, reservePurchase, reservePurchases, settlePurchases, type ReserveRequest, type SaleTerms } from '../../src/sales/scripts.js';
import { placeBids, type AuctionTerms, type BidRequest } from '../../src/auctions/scripts.js';
import { bidRequest, liveAuction, liveSale, reserveRequest } from '../helpers/live-terms.js';
import { boot, call, testConfig, waitFor } from '../helpers/system.js';
import { faultEnv, spawnRole } from '../helpers/fault-kit.js';

const cfg = testConfig(faultEnv());
const redis: Redis = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'script-failure' });
t.teardown(() => redis.quit());

/** Every key under a hash tag and its value (DUMP: type and content), so a test can say "nothing changed". */
async function snapshot(tag: string): Promise<Record<string, string>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${tag.replace(/[{}]/g, '\\$&')}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const out: Record<string, string> = {};
  for (const k of keys.sort()) out[k] = ((await redis.dumpBuffer(k)) ?? Buffer.alloc(0)).toString('hex');
  return out;
}

const sale = (over: Partial<SaleTerms> = {}) => liveSale(redis, { stock: 10, ...over });
const reserve = (s: SaleTerms, buyerId: string, over: Partial<ReserveRequest> = {}): ReserveRequest =>
  reserveRequest(s, buyerId, { rateWindowMs: 60_000, idempotencyKey: 'k-1', fingerprint: 'f-1', ...over });

const saleTag = (id: string) => saleKeys.sale(id);

/** `damage` a key, call, and expect the call to fail naming `script` and to change nothing at all. */
async function failsWhole(t: Test, tag: string, script: string, damage: () => Promise<unknown>, run: () => Promise<unknown>, expected: RegExp) {
  await damage();
  const before = await snapshot(tag);
  await t.rejects(run(), expected, `${script} fails with a clear error`);
  const after = await snapshot(tag);
  t.same(after, before, `${script} wrote nothing (${Object.keys(before).length} keys compared)`);
}

t.test('reservePurchases: a damaged key fails the call before anything is written', async (t) => {
  // The sale's `reserved` counter holds no number: it is the second counter written.
  const a = await sale();
  await failsWhole(t, saleTag(a.id), 'reservePurchases', () => redis.hset(saleKeys.sale(a.id), 'reserved', 'lots'),
    () => reservePurchase(redis, reserve(a, newUserId())), /reservePurchases: .*reserved/);

  // The outbox is not a stream: the event is the last thing written.
  const b = await sale();
  await failsWhole(t, saleTag(b.id), 'reservePurchases', async () => {
    await redis.del(saleKeys.outbox(b.id));
    await redis.set(saleKeys.outbox(b.id), 'not a stream');
  }, () => reservePurchase(redis, reserve(b, newUserId())), /reservePurchases: .*outbox.* string/);

  // The in-flight hash is not a hash: read after the rate counter was counted.
  const c = await sale();
  await failsWhole(t, saleTag(c.id), 'reservePurchases', () => redis.set(saleKeys.inflight(c.id), 'not a hash'),
    () => reservePurchase(redis, reserve(c, newUserId())), /WRONGTYPE|reservePurchases: .*inflight/);

  // A batch: the last purchase's rate counter holds no number, or is not a string. The purchases before
  // it would have been written before it was reached: the whole call fails first, nothing written.
  const d = await sale();
  const [ok1, ok2, damaged] = [newUserId(), newUserId(), newUserId()];
  const batchOf = () => [reserve(d, ok1), reserve(d, ok2), reserve(d, damaged)];
  await failsWhole(t, saleTag(d.id), 'reservePurchases', () => redis.set(saleKeys.rate(d.id, damaged), 'many'),
    () => reservePurchases(redis, d.id, batchOf()), /reservePurchases: .*rate.*"many", not an integer/);
  await redis.del(saleKeys.rate(d.id, damaged));
  await failsWhole(t, saleTag(d.id), 'reservePurchases', () => redis.hset(saleKeys.rate(d.id, damaged), 'n', 1),
    () => reservePurchases(redis, d.id, batchOf()), /reservePurchases: .*rate.* holds a hash, not a string/);
  await redis.del(saleKeys.rate(d.id, damaged));
  // The first purchase's counter is the call's first write: Redis's own error, and still nothing written.
  await failsWhole(t, saleTag(d.id), 'reservePurchases', () => redis.set(saleKeys.rate(d.id, ok1), 'many'),
    () => reservePurchases(redis, d.id, batchOf()), /not an integer/);
  await redis.del(saleKeys.rate(d.id, ok1));
  t.same((await reservePurchases(redis, d.id, batchOf())).map((r) => r.status === 'fulfilled' && r.value.code), [Outcome.Applied, Outcome.Applied, Outcome.Applied],
    'the batch is accepted once the key is repaired');

  // Repaired, the same request is decided afresh and accepted.
  await redis.del(saleKeys.inflight(c.id));
  const retry = await reservePurchase(redis, reserve(c, newUserId()));
  t.equal(retry.code, Outcome.Applied, 'accepted once the key is repaired');
});

t.test('settlePurchases: a damaged key fails the whole batch before anything is written', async (t) => {
  for (const [what, damage] of [
    ['the in-flight hash is a string', (s: SaleTerms) => redis.del(saleKeys.inflight(s.id)).then(() => redis.set(saleKeys.inflight(s.id), 'x'))],
    ['the bought hash is a string', (s: SaleTerms) => redis.del(saleKeys.bought(s.id)).then(() => redis.set(saleKeys.bought(s.id), 'x'))],
    ['the sold counter holds no number', (s: SaleTerms) => redis.hset(saleKeys.sale(s.id), 'sold', 'many')],
  ] as const) {
    const s = await sale();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = reserve(s, newUserId(), { idempotencyKey: undefined, fingerprint: undefined });
      t.equal((await reservePurchase(redis, r)).code, Outcome.Applied);
      ids.push(r.purchaseId);
    }
    // A confirmation, a failure and a cancellation: every kind of transition in one batch.
    const batch = [
      { purchaseId: ids[0]!, status: 'confirmed' as const, reason: '', settledAt: Date.now() },
      { purchaseId: ids[1]!, status: 'failed' as const, reason: 'insufficient_funds', settledAt: Date.now() },
      { purchaseId: ids[2]!, status: 'cancelled' as const, reason: 'cancelled', settledAt: Date.now() },
    ];
    await failsWhole(t, saleTag(s.id), `settlePurchases (${what})`, () => damage(s), () => settlePurchases(redis, s.id, batch),
      /WRONGTYPE|settlePurchases: /);
  }
});

const auction = () => liveAuction(redis);
const bid = (a: AuctionTerms, buyerId: string, amount: number, over: Partial<BidRequest> = {}): BidRequest =>
  bidRequest(a, buyerId, amount, { rateWindowMs: 60_000, ...over });

t.test('placeBids: a damaged key of the second bid of a batch fails the batch before the first bid is written', async (t) => {
  const cases: [string, (a: AuctionTerms, second: string) => Promise<unknown>, Partial<BidRequest>][] = [
    ["the second bidder's idempotency record is a hash", (a, b) => redis.hset(auctionKeys.idempotency(a.id, b, 'k-2'), 'x', '1'), { idempotencyKey: 'k-2', fingerprint: 'f-2' }],
    ["the second bidder's rate counter is a list", (a, b) => redis.rpush(auctionKeys.rate(a.id, b), 'x'), {}],
    ["the second bidder's own-bids set is a string", (a, b) => redis.set(auctionKeys.mine(a.id, b), 'x'), {}],
    ['the history is a hash', (a) => redis.del(auctionKeys.history(a.id)).then(() => redis.hset(auctionKeys.history(a.id), 'x', '1')), {}],
    ['the outbox is a string', (a) => redis.del(auctionKeys.outbox(a.id)).then(() => redis.set(auctionKeys.outbox(a.id), 'x')), {}],
  ];
  for (const [what, damage, second] of cases) {
    const a = await auction();
    // A bid before, so the batch starts from a book with a leader.
    const [first] = await placeBids(redis, a.id, [bid(a, newUserId(), 1000)]);
    t.equal(first?.status === 'fulfilled' && first.value.code, Outcome.Applied);
    const b = newUserId();
    await failsWhole(t, auctionKeys.auction(a.id), `placeBids (${what})`, () => damage(a, b),
      () => placeBids(redis, a.id, [bid(a, newUserId(), 1100, { idempotencyKey: 'k-1', fingerprint: 'f-1' }), bid(a, b, 1300, second)]),
      /WRONGTYPE|placeBids: /);
  }
});

t.test('the api answers a failing script with a bare 500, logs it, and keeps serving every other buyer', async (t) => {
  // The database and the sales come from an in-process system; the api under test is a real child process.
  const sys = await boot(t, { api: false, env: faultEnv() });
  const broken = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const healthy = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const [victim, other] = await sys.createBuyers(2);
  const child = spawnRole(t, 'api', faultEnv({ STAMPEDE_LOG_LEVEL: 'info', STAMPEDE_HTTP_PORT: '0' }));
  const logLines = () => child.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
  const port = await waitFor('the api child to listen', async () => {
    if (child.proc.exitCode !== null) throw new Error(`api exited: ${child.output()}`);
    return logLines().find((l) => l.msg === 'api listening')?.port as number | undefined;
  }, 30_000);
  const url = `http://127.0.0.1:${port}`;
  const buy = (buyer: string, saleId: string) => call(`${url}/v1/sales/${saleId}/purchases`, {
    method: 'POST', body: JSON.stringify({ quantity: 1 }),
    headers: { authorization: `Bearer ${sys.token(buyer)}`, 'content-type': 'application/json', 'idempotency-key': 'once' },
  });

  // The first purchase loads the sale into Redis; then its outbox is damaged.
  const warm = await buy(other!, broken.id);
  t.equal(warm.status, 202);
  await redis.del(saleKeys.outbox(broken.id));
  await redis.set(saleKeys.outbox(broken.id), 'not a stream');
  const before = await snapshot(saleTag(broken.id));
  const answer = await buy(victim!, broken.id);
  t.equal(answer.status, 500, 'a bare 500');
  t.match(answer.headers.get('content-type'), /application\/problem\+json/);
  t.same(answer.body, { type: 'https://stampede.dev/problems/internal', title: 'Internal error', status: 500, code: 'INTERNAL' }, 'no stack, no detail');
  t.same(await snapshot(saleTag(broken.id)), before, 'nothing of the purchase was written');
  const logged = await waitFor('the failure to be logged', async () => logLines().find((l) => l.msg === 'unhandled error in route'));
  t.equal(logged.level, 50, 'logged as an error');
  t.match(logged.err?.message, /reservePurchases: .*outbox/, 'the log names the script and the key');

  // The process is up and every other buyer unaffected.
  t.equal(child.proc.exitCode, null, 'the api is still running');
  const fine = await buy(victim!, healthy.id);
  t.equal(fine.status, 202, 'the same buyer buys another sale');
  t.same(await readLiveSale(redis, healthy.id), { status: 'open', stock: 10, available: 9, reserved: 1, sold: 0 });
  t.equal((await call(`${url}/readyz`)).status, 200, 'still ready');

  // Repaired, the victim's retry (same key) is decided afresh and accepted.
  await redis.del(saleKeys.outbox(broken.id));
  const retried = await buy(victim!, broken.id);
  t.equal(retried.status, 202, 'accepted once the key is repaired');
});
