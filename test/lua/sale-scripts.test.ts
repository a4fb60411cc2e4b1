/**
 * Every output code of every sale script, against a real Redis.
 */
import { Outcome } from '../../src/platform/redis/outcomes.js';
import t from 'tap';
import { createRedis } from '../../src/platform/redis/client.js';
import { runScript } from '../../src/platform/redis/functions.js';
import { saleKeys, STOCK_CHANNEL } from '../../src/sales/keys.js';
import { RELAY_GROUP } from '../../src/platform/messaging/outbox.js';
import { addStock, expirePurchase, loadSale, readLiveSale, readPurchase, requestCancel, reservePurchase, setEligibleBuyers, SETTLE_PER_CALL, settlePurchase, settlePurchases, type SaleTerms, type Settlement } from '../../src/sales/scripts.js';
import { trimOutbox } from '../../src/platform/messaging/outbox.js';
import { newPurchaseId, newSaleId, newUserId } from '../../src/platform/ids.js';
import { testConfig, testRedis } from '../helpers/system.js';
import { auditLiveSale } from '../../src/sales/audit.js';
import { liveSale, reserveRequest } from '../helpers/live-terms.js';

const cfg = testConfig();
const redis = testRedis(t, 'lua-test');

const sale = (over: Partial<SaleTerms> = {}): Promise<SaleTerms> => liveSale(redis, over);
const req = reserveRequest;

t.test('loadSale: creates once, then refreshes terms without touching counters', async (t) => {
  const s = await sale();
  const buyer = newUserId();
  t.equal((await reservePurchase(redis, req(s, buyer))).code, Outcome.Applied);
  t.equal(await loadSale(redis, { ...s, perBuyerLimit: 5, stock: 999 }, 0), false, 'second load reports existing');
  const live = await readLiveSale(redis, s.id);
  t.same(live, { status: 'open', stock: 3, available: 2, reserved: 1, sold: 0 }, 'counters untouched');
  t.equal(await redis.hget(saleKeys.sale(s.id), 'limit'), '5', 'terms refreshed');
  const groups = (await redis.xinfo('GROUPS', saleKeys.outbox(s.id))) as unknown[][];
  t.equal(groups.length, 1, 'relay group created with the stream');
  t.equal(await loadSale(redis, { ...s, id: newSaleId() }, 2), true);
});

t.test('loadSale: first load subtracts what was already sold', async (t) => {
  const s = await sale({ stock: 10 });
  const s2 = { ...s, id: newSaleId() };
  await loadSale(redis, s2, 4);
  t.same(await readLiveSale(redis, s2.id), { status: 'open', stock: 10, available: 6, reserved: 0, sold: 4 });
});

t.test('reservePurchase: accepted (1) reserves, records and appends to the outbox', async (t) => {
  const s = await sale();
  const buyer = newUserId();
  const r = req(s, buyer, { quantity: 2 });
  const out = await reservePurchase(redis, r);
  t.same(out, { code: Outcome.Applied, purchaseId: r.purchaseId, available: 1, private: false });
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 3, available: 1, reserved: 2, sold: 0 });
  t.equal(await redis.hget(saleKeys.bought(s.id), buyer), '2');
  t.equal(await redis.hget(saleKeys.inflight(s.id), buyer), r.purchaseId);
  const rec = await readPurchase(redis, s.id, r.purchaseId);
  t.match(rec, { buyerId: buyer, quantity: 2, unitPrice: 500, currency: 'EUR', status: 'pending', cancelRequested: false });
  const entries = await redis.xrange(saleKeys.outbox(s.id), '-', '+');
  t.equal(entries.length, 1);
  const fields = entries[0]![1];
  const data = JSON.parse(fields[fields.indexOf('data') + 1]!);
  t.match(data, { purchaseId: r.purchaseId, saleId: s.id, buyerId: buyer, quantity: 2, unitPrice: 500, currency: 'EUR' });
  t.equal(fields[fields.indexOf('type') + 1], 'stampede.purchase.accepted.v1');
});

t.test('reservePurchase: replay (2) and key reuse with another body (-8)', async (t) => {
  const s = await sale();
  const buyer = newUserId();
  const first = req(s, buyer, { idempotencyKey: 'k1', fingerprint: 'q=1' });
  t.equal((await reservePurchase(redis, first)).code, Outcome.Applied);
  t.same(await reservePurchase(redis, { ...first, purchaseId: newPurchaseId(s.id) }), { code: Outcome.AlreadyApplied, purchaseId: first.purchaseId });
  t.same(await reservePurchase(redis, { ...first, purchaseId: newPurchaseId(s.id), quantity: 2, fingerprint: 'q=2' }), {
    code: Outcome.IdempotencyMismatch, purchaseId: first.purchaseId,
  });
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 3, available: 2, reserved: 1, sold: 0 }, 'replays change nothing');
  t.equal(await redis.xlen(saleKeys.outbox(s.id)), 1, 'one event');
});

t.test('reservePurchase: sold out (-1), with what is left', async (t) => {
  const s = await sale({ stock: 1, perBuyerLimit: 5 });
  t.same(await reservePurchase(redis, req(s, newUserId(), { quantity: 2 })), { code: Outcome.SoldOut, available: 1, private: false });
  t.equal((await reservePurchase(redis, req(s, newUserId()))).code, Outcome.Applied);
  t.same(await reservePurchase(redis, req(s, newUserId())), { code: Outcome.SoldOut, available: 0, private: false });
});

t.test('reservePurchase: limit reached (-2) counts pending and settled', async (t) => {
  const s = await sale({ stock: 10, perBuyerLimit: 2 });
  const buyer = newUserId();
  const r1 = req(s, buyer);
  await reservePurchase(redis, r1);
  await settlePurchase(redis, s.id, r1.purchaseId, 'confirmed', '', Date.now());
  t.same(await reservePurchase(redis, req(s, buyer, { quantity: 2 })), { code: Outcome.LimitReached, bought: 1, limit: 2 });
  t.equal((await reservePurchase(redis, req(s, buyer))).code, Outcome.Applied);
});

t.test('reservePurchase: purchase in progress (-3)', async (t) => {
  const s = await sale({ stock: 10, perBuyerLimit: 5 });
  const buyer = newUserId();
  const r1 = req(s, buyer);
  await reservePurchase(redis, r1);
  t.same(await reservePurchase(redis, req(s, buyer)), { code: Outcome.InProgress, purchaseId: r1.purchaseId });
});

t.test('reservePurchase: rate limited (-4) with the time to wait', async (t) => {
  const s = await sale({ stock: 10 });
  const buyer = newUserId();
  const outs = [];
  for (let i = 0; i < 4; i++) outs.push(await reservePurchase(redis, req(s, buyer, { rateMax: 3, rateWindowMs: 5000 })));
  const last = outs[3]!;
  t.equal(last.code, Outcome.RateLimited);
  if (last.code === Outcome.RateLimited) t.ok(last.retryAfterMs > 0 && last.retryAfterMs <= 5000, `retry after ${last.retryAfterMs}ms`);
});

t.test('reservePurchase: not open yet (-5), ended (-6), closed (-6), unknown (-7)', async (t) => {
  const now = Date.now();
  const later = await sale({ startsAt: now + 60_000, endsAt: now + 120_000 });
  t.same(await reservePurchase(redis, req(later, newUserId())), { code: Outcome.NotOpenYet, startsAt: later.startsAt });
  const over = await sale({ startsAt: now - 120_000, endsAt: now - 60_000 });
  t.same(await reservePurchase(redis, req(over, newUserId())), { code: Outcome.Closed });
  const closed = await sale({ status: 'closed' });
  t.same(await reservePurchase(redis, req(closed, newUserId())), { code: Outcome.Closed });
  t.same(await reservePurchase(redis, req({ ...closed, id: newSaleId() }, newUserId())), { code: Outcome.NotFound, ineligible: false });
  for (const s of [later, over, closed]) t.equal(await redis.xlen(saleKeys.outbox(s.id)), 0, 'refusals append nothing');
});

t.test('reservePurchase: a private sale refuses a buyer not on its list as unknown (-1), before any other check', async (t) => {
  const s = await sale({ private: true, stock: 5, perBuyerLimit: 5 });
  const [on, off] = [newUserId(), newUserId()];
  t.same(await reservePurchase(redis, req(s, on)), { code: Outcome.NotFound, ineligible: true }, 'loaded without its list: nobody may buy');
  t.equal(await setEligibleBuyers(redis, s.id, [on]), true);
  const accepted = await reservePurchase(redis, req(s, on));
  t.match(accepted, { code: Outcome.Applied, available: 4, private: true }, 'a listed buyer buys');
  t.same(await reservePurchase(redis, req(s, off)), { code: Outcome.NotFound, ineligible: true }, 'another does not');
  // Not on the list: refused as unknown although the rate limit and the window would refuse too.
  for (let i = 0; i < 5; i++) t.same(await reservePurchase(redis, req(s, off, { rateMax: 1 })), { code: Outcome.NotFound, ineligible: true });
  const later = await sale({ private: true, startsAt: Date.now() + 60_000, endsAt: Date.now() + 120_000 });
  t.same(await reservePurchase(redis, req(later, off)), { code: Outcome.NotFound, ineligible: true }, 'not "opens later"');
  t.equal(await redis.exists(saleKeys.rate(s.id, off)), 0, 'no rate counter was even started');
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 5, available: 4, reserved: 1, sold: 0 });
  t.equal(await redis.xlen(saleKeys.outbox(s.id)), 1, 'only the accepted purchase was appended');

  // The list replaced: the next decision sees the new one whole.
  t.equal(await setEligibleBuyers(redis, s.id, [off]), true);
  t.same(await reservePurchase(redis, req(s, newUserId())), { code: Outcome.NotFound, ineligible: true });
  t.same(await reservePurchase(redis, req(s, on, { rateMax: 100 })), { code: Outcome.NotFound, ineligible: true }, 'taken off the list: refused');
  t.match(await reservePurchase(redis, req(s, off, { rateMax: 100, rateWindowMs: 1 })), { code: Outcome.Applied, private: true }, 'put on it: buys');
  t.equal(await setEligibleBuyers(redis, s.id, []), true);
  t.equal(await redis.exists(saleKeys.eligible(s.id)), 0, 'an empty list');
  t.same(await reservePurchase(redis, req(s, off, { rateMax: 100 })), { code: Outcome.NotFound, ineligible: true }, 'nobody may buy');
  t.equal(await setEligibleBuyers(redis, newSaleId(), [on]), false, 'an unknown sale (-1)');

  const big = Array.from({ length: 10_000 }, () => newUserId());
  t.equal(await setEligibleBuyers(redis, s.id, big), true);
  t.equal(await redis.scard(saleKeys.eligible(s.id)), 10_000, 'ten thousand buyers in one call');
  t.match(await reservePurchase(redis, req(s, big[9_999]!)), { code: Outcome.Applied });

  const open = await sale({ private: false });
  t.match(await reservePurchase(redis, req(open, off)), { code: Outcome.Applied, private: false }, 'a public sale reads no list');
});

t.test('concurrency: 400 parallel purchases of a private sale, half by listed buyers: exactly the listed get stock, never oversold', async (t) => {
  const s = await sale({ private: true, stock: 150, perBuyerLimit: 1 });
  const listed = Array.from({ length: 200 }, () => newUserId());
  const strangers = Array.from({ length: 200 }, () => newUserId());
  await setEligibleBuyers(redis, s.id, listed);
  const attempts = listed.flatMap((b, i) => [{ b, on: true }, { b: strangers[i]!, on: false }]);
  const outs = await Promise.all(attempts.map(({ b }) => reservePurchase(redis, req(s, b))));
  const buyersOf = (code: Outcome, on: boolean) => attempts.filter((a, i) => a.on === on && outs[i]!.code === code).map((a) => a.b);
  t.equal(buyersOf(Outcome.Applied, true).length, 150, 'the stock went to listed buyers');
  t.equal(buyersOf(Outcome.SoldOut, true).length, 50, 'the other listed buyers found it sold out');
  t.equal(buyersOf(Outcome.NotFound, false).length, 200, 'every stranger was told it does not exist');
  t.ok(outs.every((o, i) => attempts[i]!.on || (o.code === Outcome.NotFound && o.ineligible)), 'no stranger got anything else');
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 150, available: 0, reserved: 150, sold: 0 });
  const bought = await redis.hgetall(saleKeys.bought(s.id));
  t.same(Object.keys(bought).sort(), buyersOf(Outcome.Applied, true).sort(), 'holders are exactly the accepted listed buyers');
  t.equal(await redis.xlen(saleKeys.outbox(s.id)), 150, 'one event per accepted purchase');
});

t.test('settlePurchase: every transition once, and -7 for an unknown purchase', async (t) => {
  const s = await sale({ stock: 5, perBuyerLimit: 5 });
  const sub = createRedis(cfg, { autoPipelining: false });
  t.teardown(() => sub.quit());
  const announced: string[] = [];
  await sub.subscribe(STOCK_CHANNEL);
  sub.on('message', (_c: string, id: string) => announced.push(id));

  const a = req(s, newUserId());
  await reservePurchase(redis, a);
  t.same(await settlePurchase(redis, s.id, a.purchaseId, 'confirmed', '', 1), { code: Outcome.Applied, status: 'confirmed' });
  t.same(await settlePurchase(redis, s.id, a.purchaseId, 'confirmed', '', 1), { code: Outcome.AlreadyApplied, status: 'confirmed' }, 'again: no-op');
  t.equal(await redis.hget(saleKeys.inflight(s.id), a.buyerId), null, 'in-flight cleared');
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 5, available: 4, reserved: 0, sold: 1 });

  t.same(await settlePurchase(redis, s.id, a.purchaseId, 'cancelled', '', 2), { code: Outcome.Applied, status: 'cancelled' }, 'refund path');
  t.same(await settlePurchase(redis, s.id, a.purchaseId, 'cancelled', '', 2), { code: Outcome.AlreadyApplied, status: 'cancelled' });
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 5, available: 5, reserved: 0, sold: 0 });
  t.equal(await redis.hget(saleKeys.bought(s.id), a.buyerId), '0', 'buyer may buy again');

  const b = req(s, newUserId(), { quantity: 5 });
  await reservePurchase(redis, b);
  t.same(await settlePurchase(redis, s.id, b.purchaseId, 'failed', 'INSUFFICIENT_FUNDS', 3), { code: Outcome.Applied, status: 'failed' });
  t.same(await settlePurchase(redis, s.id, b.purchaseId, 'confirmed', '', 3), { code: Outcome.AlreadyApplied, status: 'failed' }, 'failed is final');
  t.match(await readPurchase(redis, s.id, b.purchaseId), { status: 'failed', reason: 'INSUFFICIENT_FUNDS' });
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 5, available: 5, reserved: 0, sold: 0 });
  await new Promise((r) => setTimeout(r, 100));
  t.ok(announced.includes(s.id), 'stock coming back to a sold-out sale is announced');

  const c = req(s, newUserId());
  await reservePurchase(redis, c);
  t.same(await settlePurchase(redis, s.id, c.purchaseId, 'cancelled', '', 4), { code: Outcome.Applied, status: 'cancelled' }, 'pending -> cancelled');
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 5, available: 5, reserved: 0, sold: 0 });

  t.same(await settlePurchase(redis, s.id, newPurchaseId(s.id), 'confirmed', '', 5), { code: Outcome.NotFound });
});

t.test('settlePurchases: one call applies a batch in order, each purchase once', async (t) => {
  const s = await sale({ stock: 10, perBuyerLimit: 5 });
  const [a, b, c] = [req(s, newUserId()), req(s, newUserId(), { quantity: 2 }), req(s, newUserId())];
  for (const r of [a, b, c]) t.equal((await reservePurchase(redis, r)).code, Outcome.Applied);
  const unknown = newPurchaseId(s.id);
  const batch = [
    { purchaseId: a.purchaseId, status: 'confirmed', reason: '', settledAt: 10 },
    { purchaseId: b.purchaseId, status: 'failed', reason: 'INSUFFICIENT_FUNDS', settledAt: 11 },
    { purchaseId: unknown, status: 'confirmed', reason: '', settledAt: 12 },
    // c is accepted then cancelled in the same batch: both apply, in order.
    { purchaseId: c.purchaseId, status: 'confirmed', reason: '', settledAt: 13 },
    { purchaseId: c.purchaseId, status: 'cancelled', reason: '', settledAt: 14 },
    { purchaseId: a.purchaseId, status: 'confirmed', reason: '', settledAt: 15 },
  ] as const;
  t.same(await settlePurchases(redis, s.id, batch), [
    { code: Outcome.Applied, status: 'confirmed' }, { code: Outcome.Applied, status: 'failed' }, { code: Outcome.NotFound },
    { code: Outcome.Applied, status: 'confirmed' }, { code: Outcome.Applied, status: 'cancelled' }, { code: Outcome.AlreadyApplied, status: 'confirmed' },
  ]);
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 10, available: 9, reserved: 0, sold: 1 }, 'only a stays sold');
  t.match(await readPurchase(redis, s.id, c.purchaseId), { status: 'cancelled' });
  t.equal(await redis.hget(saleKeys.bought(s.id), b.buyerId), '0', 'the failed buyer may buy again');
  t.equal(await redis.hlen(saleKeys.inflight(s.id)), 0, 'no purchase left in flight');

  t.same(await settlePurchases(redis, s.id, batch), [
    { code: Outcome.AlreadyApplied, status: 'confirmed' }, { code: Outcome.AlreadyApplied, status: 'failed' }, { code: Outcome.NotFound },
    { code: Outcome.AlreadyApplied, status: 'cancelled' }, { code: Outcome.AlreadyApplied, status: 'cancelled' }, { code: Outcome.AlreadyApplied, status: 'confirmed' },
  ], 'the batch redelivered changes nothing');
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 10, available: 9, reserved: 0, sold: 1 });
});

t.test('settlePurchases: a buyer\'s in-flight marker is cleared only by the purchase it names', async (t) => {
  const s = await sale({ stock: 10, perBuyerLimit: 5 });
  const [a, b, c] = [req(s, newUserId()), req(s, newUserId()), req(s, newUserId())];
  for (const r of [a, b, c]) t.equal((await reservePurchase(redis, r)).code, Outcome.Applied);
  t.equal((await settlePurchases(redis, s.id, [{ purchaseId: c.purchaseId, status: 'confirmed', reason: '', settledAt: 1 }]))[0]!.code, Outcome.Applied);
  // b's marker now names another purchase, and c's buyer has a new one in flight.
  const other = newPurchaseId(s.id);
  const next = newPurchaseId(s.id);
  await redis.hset(saleKeys.inflight(s.id), b.buyerId, other, c.buyerId, next);
  const out = await settlePurchases(redis, s.id, [
    { purchaseId: a.purchaseId, status: 'confirmed', reason: '', settledAt: 2 },
    { purchaseId: b.purchaseId, status: 'failed', reason: 'INSUFFICIENT_FUNDS', settledAt: 2 },
    { purchaseId: c.purchaseId, status: 'confirmed', reason: '', settledAt: 2 },
  ]);
  t.same(out.map((o) => o.code), [Outcome.Applied, Outcome.Applied, Outcome.AlreadyApplied], 'a and b settled now; c had been settled already');
  t.same(await redis.hgetall(saleKeys.inflight(s.id)), { [b.buyerId]: other, [c.buyerId]: next }, 'a cleared; b and c keep the markers of their other purchases');
});

t.test('settlePurchases: more purchases than one call takes are applied in calls, in order, one outcome each', async (t) => {
  const n = SETTLE_PER_CALL + 5;
  const s = await sale({ stock: n, perBuyerLimit: 1 });
  const reqs = Array.from({ length: n }, () => req(s, newUserId()));
  const accepted = await Promise.all(reqs.map((r) => reservePurchase(redis, r)));
  t.ok(accepted.every((a) => a.code === Outcome.Applied), `${n} reserved`);
  // The last purchase is settled twice across the call boundary: confirmed, then cancelled.
  const last = reqs[n - 1]!;
  const settlements: Settlement[] = reqs.map((r, i) => ({ purchaseId: r.purchaseId, status: i % 2 ? 'failed' : 'confirmed', reason: '', settledAt: 1 }));
  settlements.splice(SETTLE_PER_CALL - 1, 0, { purchaseId: last.purchaseId, status: 'confirmed', reason: '', settledAt: 1 });
  settlements[settlements.length - 1] = { purchaseId: last.purchaseId, status: 'cancelled', reason: '', settledAt: 2 };
  const outcomes = await settlePurchases(redis, s.id, settlements);
  t.equal(outcomes.length, settlements.length, 'one outcome per settlement');
  t.same(outcomes[SETTLE_PER_CALL - 1], { code: Outcome.Applied, status: 'confirmed' }, 'the last purchase confirmed in the first call');
  t.same(outcomes[outcomes.length - 1], { code: Outcome.Applied, status: 'cancelled' }, 'and cancelled in the second, which saw the first');
  const confirmed = reqs.filter((_, i) => i % 2 === 0 && i !== n - 1).length;
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: n, available: n - confirmed, reserved: 0, sold: confirmed });
});

t.test('settlePurchases: a damaged purchase record fails the whole call before anything is written', async (t) => {
  const s = await sale({ stock: 5 });
  const [a, b] = [req(s, newUserId()), req(s, newUserId())];
  for (const r of [a, b]) await reservePurchase(redis, r);
  await redis.hdel(saleKeys.purchase(s.id, b.purchaseId), 'quantity');
  const before = await readLiveSale(redis, s.id);
  await t.rejects(
    settlePurchases(redis, s.id, [
      { purchaseId: a.purchaseId, status: 'confirmed', reason: '', settledAt: 1 },
      { purchaseId: b.purchaseId, status: 'confirmed', reason: '', settledAt: 1 },
    ]),
    new RegExp(`purchase ${b.purchaseId} has no buyer or quantity; nothing applied`),
  );
  t.match(await readPurchase(redis, s.id, a.purchaseId), { status: 'pending' }, 'the good purchase before it is untouched');
  t.same(await readLiveSale(redis, s.id), before, 'the counters too');
  t.equal(await redis.hget(saleKeys.inflight(s.id), a.buyerId), a.purchaseId, 'and its in-flight marker');
});

t.test('settlePurchases: the confirmation that sells the last unit appends sale.sold_out to the outbox, once per stock', async (t) => {
  const s = await sale({ stock: 2, perBuyerLimit: 1 });
  const soldOut = async () => (await redis.xrange(saleKeys.outbox(s.id), '-', '+'))
    .map(([, f]) => Object.fromEntries(f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]]] : []))) as Record<string, string>)
    .filter((e) => e.type === 'stampede.sale.sold_out.v1');
  const [a, b, c] = [req(s, newUserId()), req(s, newUserId()), req(s, newUserId())];
  for (const r of [a, b]) t.equal((await reservePurchase(redis, r)).code, Outcome.Applied);
  await settlePurchase(redis, s.id, a.purchaseId, 'confirmed', '', 1);
  t.same(await soldOut(), [], 'one unit of two sold: not sold out');
  // Every unit reserved is not sold out: one purchase may still fail and put its unit back.
  await settlePurchases(redis, s.id, [{ purchaseId: b.purchaseId, status: 'confirmed', reason: '', settledAt: 2 }, { purchaseId: a.purchaseId, status: 'confirmed', reason: '', settledAt: 1 }]);
  const first = await soldOut();
  t.equal(first.length, 1, 'the last unit confirmed: sold out');
  t.equal(first[0]!.id, `${s.id}:sold_out:2`);
  t.same(JSON.parse(first[0]!.data!), { saleId: s.id, stock: 2, soldOutAt: Number(first[0]!.time) });
  await settlePurchase(redis, s.id, b.purchaseId, 'confirmed', '', 2);
  t.equal((await soldOut()).length, 1, 'the same confirmation again (a redelivery): no second event');
  t.equal((await addStock(redis, s.id, 1))?.stock, 3);
  t.equal((await reservePurchase(redis, c)).code, Outcome.Applied);
  await settlePurchase(redis, s.id, c.purchaseId, 'failed', 'INSUFFICIENT_FUNDS', 3);
  t.equal((await soldOut()).length, 1, 'a failed purchase sells nothing');
  const d = req(s, newUserId());
  t.equal((await reservePurchase(redis, d)).code, Outcome.Applied);
  await settlePurchase(redis, s.id, d.purchaseId, 'confirmed', '', 4);
  t.same((await soldOut()).map((e) => e.id), [`${s.id}:sold_out:2`, `${s.id}:sold_out:3`], 'stock added and sold out again: a new event');
});

t.test('settlePurchases: a call whose arguments do not match its keys is refused, changing nothing', async (t) => {
  const s = await sale();
  const a = req(s, newUserId());
  await reservePurchase(redis, a);
  const keys = [saleKeys.sale(s.id), saleKeys.bought(s.id), saleKeys.inflight(s.id), saleKeys.outbox(s.id), saleKeys.purchase(s.id, a.purchaseId)];
  await t.rejects(runScript(redis, 'settlePurchases', keys, [STOCK_CHANNEL, 'confirmed', '', 1]), /1 purchases need 5 arguments, got 4/);
  await t.rejects(runScript(redis, 'settlePurchases', keys.slice(0, 4), [STOCK_CHANNEL]), /0 purchases need/);
  t.match(await readPurchase(redis, s.id, a.purchaseId), { status: 'pending' });
});

t.test('requestCancel: requested (1), again (2), not own (-7), failed (-9)', async (t) => {
  const s = await sale({ stock: 5 });
  const buyer = newUserId();
  const a = req(s, buyer);
  await reservePurchase(redis, a);
  t.same(await requestCancel(redis, s.id, a.purchaseId, newUserId()), { code: Outcome.NotFound }, 'another buyer');
  t.same(await requestCancel(redis, s.id, a.purchaseId, buyer), { code: Outcome.Applied, status: 'pending' });
  t.same(await requestCancel(redis, s.id, a.purchaseId, buyer), { code: Outcome.AlreadyApplied, status: 'pending' });
  t.equal(await redis.xlen(saleKeys.outbox(s.id)), 2, 'one cancel event, however often asked');
  const b = req(s, newUserId());
  await reservePurchase(redis, b);
  await settlePurchase(redis, s.id, b.purchaseId, 'failed', 'INSUFFICIENT_FUNDS', 1);
  t.same(await requestCancel(redis, s.id, b.purchaseId, b.buyerId), { code: Outcome.NotCancellable, status: 'failed' });
  t.same(await requestCancel(redis, s.id, newPurchaseId(s.id), buyer), { code: Outcome.NotFound });
});

t.test('expirePurchase: not due (-15), expired once (1, then 2), unknown (-1), settled first (2); it writes nothing but its request and the outbox entry', async (t) => {
  const s = await sale();
  const out = await reservePurchase(redis, req(s, newUserId()));
  if (out.code !== Outcome.Applied) return t.fail('not accepted');
  const entries = async () => (await redis.xrange(saleKeys.outbox(s.id), '-', '+')).length;
  const before = await entries();
  const notDue = await expirePurchase(redis, s.id, out.purchaseId, 60_000);
  t.equal(notDue.code, Outcome.NotDue);
  if (notDue.code === Outcome.NotDue) t.ok(notDue.dueAt > Date.now() + 50_000, 'with when it is due');
  t.equal(await entries(), before, 'nothing appended before the deadline');
  t.same(await expirePurchase(redis, s.id, out.purchaseId, 0), { code: Outcome.Applied, status: 'pending' });
  t.same(await expirePurchase(redis, s.id, out.purchaseId, 0), { code: Outcome.AlreadyApplied, status: 'pending' }, 'asked again: nothing more');
  t.equal(await entries(), before + 1, 'one expiry appended');
  const [, fields] = (await redis.xrange(saleKeys.outbox(s.id), '-', '+')).at(-1)!;
  const data = JSON.parse(fields[fields.indexOf('data') + 1]!);
  t.match(data, { purchaseId: out.purchaseId, saleId: s.id, quantity: 1, unitPrice: 500, currency: 'EUR' });
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 3, available: 2, reserved: 1, sold: 0 }, 'the stock stays reserved until settlement fails it');
  t.same(await expirePurchase(redis, s.id, newPurchaseId(s.id), 0), { code: Outcome.NotFound });

  const settled = await reservePurchase(redis, req(s, newUserId()));
  if (settled.code !== Outcome.Applied) return t.fail('not accepted');
  await settlePurchase(redis, s.id, settled.purchaseId, 'confirmed', '', Date.now());
  t.same(await expirePurchase(redis, s.id, settled.purchaseId, 0), { code: Outcome.AlreadyApplied, status: 'confirmed' }, 'a settled purchase is not expired');

  const damaged = await reservePurchase(redis, req(s, newUserId()));
  if (damaged.code !== Outcome.Applied) return t.fail('not accepted');
  await redis.hdel(saleKeys.purchase(s.id, damaged.purchaseId), 'quantity');
  const n = await entries();
  await t.rejects(expirePurchase(redis, s.id, damaged.purchaseId, 0), /incomplete record; nothing written/);
  t.equal(await redis.hget(saleKeys.purchase(s.id, damaged.purchaseId), 'expiryRequested'), null, 'a damaged record: nothing written');
  t.equal(await entries(), n);
});

t.test('addStock: added (1) and unknown sale (-7)', async (t) => {
  const s = await sale({ stock: 1 });
  t.same(await addStock(redis, s.id, 4), { available: 5, stock: 5 });
  t.equal(await addStock(redis, newSaleId(), 4), undefined);
});

t.test('trimOutbox: trims only acknowledged entries', async (t) => {
  const s = await sale({ stock: 10, perBuyerLimit: 10 });
  for (let i = 0; i < 4; i++) await reservePurchase(redis, req(s, newUserId()));
  const stream = saleKeys.outbox(s.id);
  t.equal(await trimOutbox(redis, stream), 0, 'nothing delivered: nothing trimmed');
  const read = (await redis.xreadgroup('GROUP', RELAY_GROUP, 'c1', 'COUNT', 3, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
  const ids = read[0]![1].map(([id]) => id);
  t.equal(await trimOutbox(redis, stream), 0, 'delivered but unacknowledged: kept');
  await redis.xack(stream, RELAY_GROUP, ids[0]!, ids[1]!);
  t.equal(await trimOutbox(redis, stream), 2, 'the two acknowledged entries go');
  t.equal(await redis.xlen(stream), 2, 'the pending one and the unread one stay');
  await redis.xack(stream, RELAY_GROUP, ids[2]!);
  await trimOutbox(redis, stream);
  t.equal(await redis.xlen(stream), 1, 'the never-read entry stays');
});

t.test('concurrency: 500 parallel reservations of 50 units never oversell', async (t) => {
  const s = await sale({ stock: 50, perBuyerLimit: 1 });
  const outs = await Promise.all(Array.from({ length: 500 }, () => reservePurchase(redis, req(s, newUserId()))));
  t.equal(outs.filter((o) => o.code === Outcome.Applied).length, 50);
  t.equal(outs.filter((o) => o.code === Outcome.SoldOut).length, 450);
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 50, available: 0, reserved: 50, sold: 0 });
});

t.test('concurrency: one buyer, 200 parallel attempts, limit 3 (settling as it goes)', async (t) => {
  const s = await sale({ stock: 1000, perBuyerLimit: 3 });
  const buyer = newUserId();
  let accepted = 0;
  await Promise.all(
    Array.from({ length: 200 }, async () => {
      const r = req(s, buyer);
      const out = await reservePurchase(redis, r);
      if (out.code === Outcome.Applied) {
        accepted++;
        await settlePurchase(redis, s.id, r.purchaseId, 'confirmed', '', 1);
      }
    }),
  );
  t.ok(accepted <= 3, `accepted ${accepted}`);
  t.ok(Number(await redis.hget(saleKeys.bought(s.id), buyer)) <= 3);
});

t.test('auditLiveSale: a sale the scripts kept holds every live invariant; each kind of corruption is named', async (t) => {
  const s = await sale({ stock: 10, perBuyerLimit: 2 });
  const [x, y] = [newUserId(), newUserId()];
  t.equal((await reservePurchase(redis, req(s, x, { quantity: 2 }))).code, Outcome.Applied);
  t.equal((await reservePurchase(redis, req(s, y))).code, Outcome.Applied);
  const clean = await auditLiveSale(redis, s.id, 2);
  t.same(clean.violations, []);
  t.same(clean.live, { stock: 10, available: 7, reserved: 3, sold: 0 });
  t.equal(clean.held, 3);

  await redis.hset(saleKeys.bought(s.id), x, 3);
  t.same((await auditLiveSale(redis, s.id, 2)).violations, ['a buyer over the limit in Redis', 'buyers hold 4 units, the sale counts 3 reserved + 0 sold']);
  await redis.hset(saleKeys.bought(s.id), x, 2);
  await redis.hincrby(saleKeys.sale(s.id), 'available', -8);
  t.same((await auditLiveSale(redis, s.id, 2)).violations, ['available -1 + reserved 3 + sold 0 != stock 10', 'a negative counter']);
  await redis.hset(saleKeys.sale(s.id), 'available', 0, 'sold', 11, 'reserved', -1);
  t.same((await auditLiveSale(redis, s.id, 2)).violations, ['a negative counter', 'sold more than stock', 'buyers hold 3 units, the sale counts -1 reserved + 11 sold']);
  t.same((await auditLiveSale(redis, newSaleId(), 2)).violations, ['the sale is not in Redis']);
});
