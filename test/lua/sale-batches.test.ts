/**
 * reservePurchases deciding several purchases of one sale in one call,
 * against a real Redis: each purchase is decided exactly as if alone, after
 * the ones before it (the same buyer twice, limits, stock running out in the
 * middle, an idempotent retry in the same batch, a private sale's list), and
 * a batch leaves exactly the state the same purchases leave one by one.
 */
import t from 'tap';
import { Outcome } from '../../src/platform/redis/outcomes.js';
import { saleKeys } from '../../src/sales/keys.js';
import { readLiveSale, reservePurchase, reservePurchases, setEligibleBuyers, settlePurchase, type ReserveOutcome, type ReserveRequest, type SaleTerms } from '../../src/sales/scripts.js';
import { auditLiveSale } from '../../src/sales/audit.js';
import { newUserId } from '../../src/platform/ids.js';
import { testRedis } from '../helpers/system.js';
import { liveSale, reserveRequest as req } from '../helpers/live-terms.js';

const redis = testRedis(t, 'lua-batches');

/** The batch's outcomes, each a fulfilled one (a rejected one fails the test). */
async function decided(s: SaleTerms, requests: ReserveRequest[]): Promise<ReserveOutcome[]> {
  const results = await reservePurchases(redis, s.id, requests);
  return results.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
}

const outboxIds = async (s: SaleTerms) =>
  (await redis.xrange(saleKeys.outbox(s.id), '-', '+')).map(([, f]) => f[f.indexOf('id') + 1]);

t.test('the same buyer twice in one batch: the first is accepted, the second finds it in flight', async (t) => {
  const s = await liveSale(redis, { stock: 10, perBuyerLimit: 2 });
  const buyer = newUserId();
  const first = req(s, buyer);
  const second = req(s, buyer);
  const other = req(s, newUserId());
  t.same(await decided(s, [first, second, other]), [
    { code: Outcome.Applied, purchaseId: first.purchaseId, available: 9, private: false },
    { code: Outcome.InProgress, purchaseId: first.purchaseId },
    { code: Outcome.Applied, purchaseId: other.purchaseId, available: 8, private: false },
  ]);
  t.equal(await redis.hget(saleKeys.bought(s.id), buyer), '1', 'bought once');
  t.equal(await redis.hget(saleKeys.inflight(s.id), buyer), first.purchaseId);
  t.equal(await redis.exists(saleKeys.purchase(s.id, second.purchaseId)), 0, 'the refused one recorded nothing');
  t.same(await outboxIds(s), [first.purchaseId, other.purchaseId], 'one outbox entry per accepted purchase, in order');
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 10, available: 8, reserved: 2, sold: 0 });
});

t.test('per-buyer limits hold inside a batch, settled quantities counted', async (t) => {
  const s = await liveSale(redis, { stock: 10, perBuyerLimit: 2 });
  const settled = newUserId();
  const earlier = req(s, settled);
  t.equal((await reservePurchase(redis, earlier)).code, Outcome.Applied);
  t.equal((await settlePurchase(redis, s.id, earlier.purchaseId, 'confirmed', '', Date.now())).code, Outcome.Applied, 'bought 1 earlier, settled');
  const tooMany = req(s, settled, { quantity: 2 });
  const fits = req(s, settled, { quantity: 1 });
  const fresh = newUserId();
  const overLimit = req(s, fresh, { quantity: 3 });
  const atLimit = req(s, fresh, { quantity: 2 });
  t.same(await decided(s, [tooMany, fits, overLimit, atLimit]), [
    { code: Outcome.LimitReached, bought: 1, limit: 2 },
    { code: Outcome.Applied, purchaseId: fits.purchaseId, available: 8, private: false },
    { code: Outcome.LimitReached, bought: 0, limit: 2 },
    { code: Outcome.Applied, purchaseId: atLimit.purchaseId, available: 6, private: false },
  ]);
  t.same(await redis.hgetall(saleKeys.bought(s.id)), { [settled]: '2', [fresh]: '2' });
  t.same((await auditLiveSale(redis, s.id, 2)).violations, [], 'the live invariants hold');
});

t.test('stock running out in the middle of a batch: the rest are told what is left', async (t) => {
  const s = await liveSale(redis, { stock: 3, perBuyerLimit: 2 });
  const [a, b, c, d] = [req(s, newUserId(), { quantity: 2 }), req(s, newUserId(), { quantity: 2 }), req(s, newUserId()), req(s, newUserId())];
  t.same(await decided(s, [a, b, c, d]), [
    { code: Outcome.Applied, purchaseId: a.purchaseId, available: 1, private: false },
    { code: Outcome.SoldOut, available: 1, private: false },
    { code: Outcome.Applied, purchaseId: c.purchaseId, available: 0, private: false },
    { code: Outcome.SoldOut, available: 0, private: false },
  ]);
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 3, available: 0, reserved: 3, sold: 0 });
  t.same(await outboxIds(s), [a.purchaseId, c.purchaseId]);
  t.same((await auditLiveSale(redis, s.id, 2)).violations, []);
});

t.test('an idempotent retry in the same batch replays the first answer; another body is a mismatch', async (t) => {
  const s = await liveSale(redis, { stock: 10, perBuyerLimit: 5 });
  const buyer = newUserId();
  const keyed = { idempotencyKey: 'k-1', fingerprint: 'q=1' };
  const first = req(s, buyer, keyed);
  const retry = req(s, buyer, keyed);
  const otherBody = req(s, buyer, { ...keyed, quantity: 2, fingerprint: 'q=2' });
  t.same(await decided(s, [first, retry, otherBody]), [
    { code: Outcome.Applied, purchaseId: first.purchaseId, available: 9, private: false },
    { code: Outcome.AlreadyApplied, purchaseId: first.purchaseId },
    { code: Outcome.IdempotencyMismatch, purchaseId: first.purchaseId },
  ]);
  t.same(await outboxIds(s), [first.purchaseId], 'accepted once');
  // A later call finds the key the batch stored.
  t.same(await reservePurchase(redis, req(s, buyer, keyed)), { code: Outcome.AlreadyApplied, purchaseId: first.purchaseId });
});

t.test('a private sale in a batch: buyers off its list are told it does not exist, the others buy', async (t) => {
  const s = await liveSale(redis, { stock: 10, perBuyerLimit: 1, private: true });
  const [listed, unlisted] = [newUserId(), newUserId()];
  t.equal(await setEligibleBuyers(redis, s.id, [listed]), true);
  const a = req(s, unlisted);
  const b = req(s, listed);
  const c = req(s, listed);
  t.same(await decided(s, [a, b, c]), [
    { code: Outcome.NotFound, ineligible: true },
    { code: Outcome.Applied, purchaseId: b.purchaseId, available: 9, private: true },
    { code: Outcome.InProgress, purchaseId: b.purchaseId },
  ]);
  t.equal(await redis.exists(saleKeys.rate(s.id, unlisted)), 0, 'the unlisted buyer left no trace, not even a rate counter');
});

t.test('a batch leaves exactly what the same purchases leave one by one', async (t) => {
  const terms = { stock: 5, perBuyerLimit: 3 };
  const one = await liveSale(redis, terms);
  const batch = await liveSale(redis, terms);
  const buyers = Array.from({ length: 6 }, () => newUserId());
  // A fixed mix: repeated buyers, quantities 1 to 4 (4 is past the limit), some with an Idempotency-Key (some reused), a tight rate limit.
  let seed = 7;
  const next = (n: number) => ((seed = (seed * 48271) % 2147483647) % n);
  const plan = Array.from({ length: 30 }, () => {
    const buyer = buyers[next(buyers.length)]!;
    const quantity = 1 + next(4);
    const key = next(3) === 0 ? 'k-1' : undefined;
    return { buyer, quantity, key };
  });
  const requestOf = (s: SaleTerms, p: (typeof plan)[number]) =>
    req(s, p.buyer, { quantity: p.quantity, rateMax: 5, rateWindowMs: 60_000, ...(p.key ? { idempotencyKey: p.key, fingerprint: `q=${p.quantity}` } : {}) });
  const oneByOne: ReserveRequest[] = plan.map((p) => requestOf(one, p));
  const batched: ReserveRequest[] = plan.map((p) => requestOf(batch, p));
  const alone: ReserveOutcome[] = [];
  for (const r of oneByOne) alone.push(await reservePurchase(redis, r));
  const together = await decided(batch, batched);
  // Purchase ids differ per sale: name each by its place in the plan.
  const named = (outcomes: ReserveOutcome[], requests: ReserveRequest[]) =>
    outcomes.map((o) => {
      if ('purchaseId' in o) return { ...o, purchaseId: requests.findIndex((r) => r.purchaseId === o.purchaseId) };
      // The wait depends on when each call ran.
      if (o.code === Outcome.RateLimited) return { ...o, retryAfterMs: o.retryAfterMs > 0 };
      return o;
    });
  t.same(named(together, batched), named(alone, oneByOne), 'the same outcome for every purchase');
  const seen = new Set<Outcome>(alone.map((o) => o.code));
  t.ok([Outcome.Applied, Outcome.InProgress, Outcome.RateLimited, Outcome.SoldOut, Outcome.LimitReached].every((c) => seen.has(c)),
    'the plan accepts, and refuses for each reason a batch shares state by');
  const { status: _a, stock: _b, ...liveOne } = (await readLiveSale(redis, one.id))!;
  const { status: _c, stock: _d, ...liveBatch } = (await readLiveSale(redis, batch.id))!;
  t.same(liveBatch, liveOne, 'the same counters');
  t.same(await redis.hgetall(saleKeys.bought(batch.id)), await redis.hgetall(saleKeys.bought(one.id)), 'the same bought quantities');
  const inflightOf = async (s: SaleTerms, requests: ReserveRequest[]) =>
    Object.fromEntries(Object.entries(await redis.hgetall(saleKeys.inflight(s.id))).map(([b, id]) => [b, requests.findIndex((r) => r.purchaseId === id)]));
  t.same(await inflightOf(batch, batched), await inflightOf(one, oneByOne), 'the same purchases in flight');
  for (const b of buyers) {
    t.equal(await redis.get(saleKeys.rate(batch.id, b)), await redis.get(saleKeys.rate(one.id, b)), 'the same rate counter');
  }
});
