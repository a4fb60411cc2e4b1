/**
 * Every output code of every auction script, and the pricing rules, against a real Redis.
 */
import { Outcome } from '../../src/platform/redis/outcomes.js';
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';
import { encodeRule, incrementOf, MAX_AUCTION_AMOUNT, type IncrementRule } from '../../src/auctions/rules.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { LIVE_CHANNEL } from '../../src/live/keys.js';
import {
  closeAuction, loadAuction, promoteBid, readLiveAuction, retractBid, type AuctionTerms, type BidRequest,
} from '../../src/auctions/scripts.js';
import { placeBid } from '../../src/auctions/batcher.js';
import { parseStoredBid } from '../../src/auctions/codec.js';
import { newAuctionId, newBidId, newUserId } from '../../src/platform/ids.js';
import { testConfig, testRedis, sleep } from '../helpers/system.js';
import { bidRequest, liveAuction } from '../helpers/live-terms.js';

const cfg = testConfig();
const redis = testRedis(t, 'lua-auction-test');

const auction = (over: Partial<AuctionTerms> = {}): Promise<AuctionTerms> => liveAuction(redis, over);

const bid = (a: AuctionTerms, buyerId: string, amount: number, over: Partial<BidRequest> = {}): Promise<ReturnType<typeof placeBid> extends Promise<infer R> ? R : never> =>
  placeBid(redis, bidRequest(a, buyerId, amount, over));

async function outboxTypes(a: AuctionTerms): Promise<string[]> {
  const entries = await redis.xrange(auctionKeys.outbox(a.id), '-', '+');
  return entries.map(([, f]) => f[f.indexOf('type') + 1]!.replace(/^stampede\.auction\.|\.v1$/g, ''));
}

async function lastEvent(a: AuctionTerms, type: string): Promise<any> {
  const entries = await redis.xrange(auctionKeys.outbox(a.id), '-', '+');
  const hit = entries.reverse().find(([, f]) => f[f.indexOf('type') + 1] === `stampede.auction.${type}.v1`);
  return hit ? JSON.parse(hit[1][hit[1].indexOf('data') + 1]!) : undefined;
}

t.test('loadAuction creates once and leaves live state alone', async (t) => {
  const a = await auction();
  const u = newUserId();
  t.equal((await bid(a, u, 1000)).code, Outcome.Applied);
  t.equal(await loadAuction(redis, { ...a, startPrice: 5 }), false);
  const live = await readLiveAuction(redis, a.id);
  t.equal(live?.startPrice, 1000);
  t.equal(live?.price, 1000);
  t.equal(live?.bidCount, 1);
});

t.test('placeBid: accepted, too low, not above own, unknown, not open, closed, rate limited, idempotency', async (t) => {
  const a = await auction();
  const [u1, u2] = [newUserId(), newUserId()];
  t.match(await bid(a, u1, 999), { code: Outcome.BidTooLow, nextMinimum: 1000 }, 'below the starting price');
  const first = await bid(a, u1, 1000);
  t.match(first, { code: Outcome.Applied, leading: true, currentPrice: 1000, nextMinimum: 1100, closed: false });
  t.match(await bid(a, u2, 1099), { code: Outcome.BidTooLow, nextMinimum: 1100 });
  const second = await bid(a, u2, 1100);
  t.match(second, { code: Outcome.Applied, leading: true, currentPrice: 1100 });
  t.match(await bid(a, u2, 1200, { maxAmount: 1200 }), { code: Outcome.Applied, leading: true, currentPrice: 1200 }, 'the leader may raise');
  t.match(await bid(a, u2, 1300, { maxAmount: 1150 }), { code: Outcome.NotAboveOwnBid, ownMaximum: 1200 }, 'a max below own standing max');
  t.match(await placeBid(redis, { auctionId: newAuctionId(), buyerId: u1, amount: 5, bidId: 'x', rateMax: 5, rateWindowMs: 1000, idempotencyTtlMs: 1000 }), { code: Outcome.NotFound });

  const later = await auction({ startsAt: Date.now() + 60_000 });
  t.match(await bid(later, u1, 1000), { code: Outcome.NotOpenYet, startsAt: later.startsAt });
  const over = await auction({ startsAt: Date.now() - 2000, endsAt: Date.now() - 1 });
  t.match(await bid(over, u1, 1000), { code: Outcome.Closed, status: 'ended' }, 'past its end, before the scheduler closed it');

  const limited = await auction();
  const r1 = await bid(limited, u1, 1000, { rateMax: 1, rateWindowMs: 60_000 });
  t.equal(r1.code, Outcome.Applied);
  const r2 = await bid(limited, u1, 2000, { rateMax: 1, rateWindowMs: 60_000 });
  t.equal(r2.code, Outcome.RateLimited);
  t.ok(r2.code === Outcome.RateLimited && r2.retryAfterMs > 0 && r2.retryAfterMs <= 60_000);

  const idem = await auction();
  const withKey = { idempotencyKey: 'k1', fingerprint: 'f1' };
  const once = await bid(idem, u1, 1000, withKey);
  const again = await bid(idem, u1, 1000, withKey);
  t.equal(again.code, Outcome.AlreadyApplied);
  t.equal(again.code === Outcome.AlreadyApplied && once.code === Outcome.Applied && again.bidId, once.code === Outcome.Applied && once.bidId);
  t.match(await bid(idem, u1, 1500, { idempotencyKey: 'k1', fingerprint: 'f2' }), { code: Outcome.IdempotencyMismatch });
  t.equal((await readLiveAuction(redis, idem.id))?.bidCount, 1, 'replays place nothing');
});

t.test('proxy bids: price one increment above the runner-up, ties to the earlier bid', async (t) => {
  const a = await auction();
  const [p, m, q] = [newUserId(), newUserId(), newUserId()];
  t.match(await bid(a, p, 1000, { maxAmount: 5000 }), { leading: true, currentPrice: 1000 }, 'a lone proxy pays its amount');
  t.match(await bid(a, m, 1100), { leading: false, currentPrice: 1200 }, 'a manual bid is outbid by the proxy at once');
  t.match(await bid(a, m, 3000), { leading: false, currentPrice: 3100 });
  t.match(await bid(a, q, 3200, { maxAmount: 5000 }), { leading: false, currentPrice: 5000 }, 'equal maxima: the earlier proxy leads');
  const live = await readLiveAuction(redis, a.id);
  t.equal(live?.leader, p);
  t.match(await bid(a, m, 6000), { leading: true, currentPrice: 6000 }, 'above every maximum leads at its amount');
  t.match(await bid(a, q, 6100, { maxAmount: 9000 }), { leading: true, currentPrice: 6100 });
  t.match(await bid(a, m, 6200, { maxAmount: 7000 }), { leading: false, currentPrice: 7100 });
});

/** The book's two best standing bids and the price they make, read from the book itself (not the cache). */
async function topFromBook(a: AuctionTerms): Promise<{ top: string; price: number | null }> {
  const flat = await redis.zrevrange(auctionKeys.book(a.id), 0, 1, 'WITHSCORES');
  if (flat.length === 0) return { top: '', price: null };
  const [lMember, lMax, rMember, rMax] = flat;
  const [, lBuyer, lBid] = /^\d+:([^:]+):(.+)$/.exec(lMember!)!;
  const lAmount = Number(parseStoredBid(lBid!, (await redis.hget(auctionKeys.bids(a.id), lBid!))!).amount);
  const rBuyer = rMember ? /^\d+:([^:]+):/.exec(rMember)![1]! : '';
  const inc = (p: number) => Number(/^abs:(\d+)$/.exec(a.rule)![1]);
  const price = rMax === undefined ? lAmount : Math.max(lAmount, Math.min(Number(lMax), Number(rMax) + inc(Number(rMax))));
  return { top: [lBuyer, lBid, lAmount, lMax, rBuyer, rMax ?? ''].join('|'), price };
}

t.test("the top two a bid keeps in the auction hash are the book's after every change of a random war", async (t) => {
  const a = await auction({ promoter: true, rule: 'abs:10', startPrice: 100 });
  const bidders = Array.from({ length: 30 }, () => newUserId());
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor(seed / 65536) % n; // the high bits: the low ones of this generator cycle
  };
  const placed: { buyer: string; bidId: string }[] = [];
  const counts = { bids: 0, proxies: 0, retractions: 0, doublings: 0, refused: 0 };
  let mismatches = 0;
  for (let step = 0; step < 400; step++) {
    const roll = random(100);
    if (roll < 8 && placed.length > 0) {
      const p = placed[random(placed.length)]!;
      const out = await retractBid(redis, a.id, p.buyer, p.bidId);
      if (out.code === Outcome.Applied) counts.retractions++;
    } else if (roll < 14 && placed.length > 0) {
      const standing = await redis.hvals(auctionKeys.standing(a.id)); // a doubling takes a standing bid
      const out = await promoteBid(redis, a.id, standing[random(standing.length)]!, 1e12);
      if (out.code === Outcome.Applied) counts.doublings++;
    } else {
      const live = (await readLiveAuction(redis, a.id))!;
      const next = live.price === null ? 100 : live.price + 10;
      const buyer = bidders[random(bidders.length)]!;
      // Proxy maxima on a grid of 100, so that equal maxima (ties go to the earlier bid) are frequent.
      const proxy = random(2) === 0;
      // One in four below the next minimum (refused: the cache must stay as it was).
      const amount = next - 10 + 10 * random(4);
      const out = await bid(a, buyer, amount, proxy ? { maxAmount: Math.ceil(amount / 100) * 100 + 100 * random(3) } : {});
      if (out.code === Outcome.Applied) {
        placed.push({ buyer, bidId: out.bidId });
        counts.bids++;
        if (proxy) counts.proxies++;
      } else counts.refused++;
    }
    const [cached, price] = await redis.hmget(auctionKeys.auction(a.id), 'top', 'price');
    const expected = await topFromBook(a);
    if (cached !== expected.top || (price === '' ? null : Number(price)) !== expected.price) {
      mismatches++;
      if (mismatches <= 3) t.fail(`step ${step}: cached top ${cached} price ${price}, the book says ${expected.top} price ${expected.price}`);
    }
  }
  t.equal(mismatches, 0, `the cache matched the book after each of 400 steps (${JSON.stringify(counts)})`);
  t.ok(counts.retractions > 5 && counts.doublings > 2 && counts.proxies > 20 && counts.refused > 5, 'every kind of change happened');
});

t.test('bids placed in the same turn are decided in one call, each exactly as if placed alone in that order', async (t) => {
  const terms = { rule: 'abs:50', startPrice: 1000, buyNowPrice: 9000, softCloseMs: 0 };
  const [batched, alone] = [await auction(terms), await auction(terms)];
  const buyers = Array.from({ length: 6 }, () => newUserId());
  let seed = 11;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor(seed / 65536) % n;
  };
  // 40 bids: rising amounts with jitter (some too low), proxies (some bidders then not above their own maximum),
  // an idempotency key used again with the same body (replay) and with another (mismatch), a bidder over its
  // rate limit, and a buy-now at bid 33 that closes the auction on the bids after it.
  const plan = Array.from({ length: 40 }, (_, i) => {
    const buyerId = buyers[random(buyers.length)]!;
    const amount = i === 32 ? 9000 : 1000 + 60 * i - 100 + random(200);
    const over: Partial<BidRequest> = random(3) === 0 ? { maxAmount: amount + 200 + random(600) } : {};
    return { buyerId, amount, over };
  });
  plan[12] = { buyerId: buyers[0]!, amount: 1900, over: { idempotencyKey: 'k', fingerprint: 'f1' } };
  plan[13] = { buyerId: buyers[0]!, amount: 1900, over: { idempotencyKey: 'k', fingerprint: 'f1' } };
  plan[14] = { buyerId: buyers[0]!, amount: 1950, over: { idempotencyKey: 'k', fingerprint: 'f2' } };
  const hot = newUserId(); // three attempts allowed per window
  for (const i of [20, 21, 22, 23]) plan[i] = { buyerId: hot, amount: 2300 + 10 * i, over: { rateMax: 3, rateWindowMs: 60_000 } };

  const inTurn = await Promise.all(plan.map((p) => bid(batched, p.buyerId, p.amount, p.over)));
  const oneByOne = [];
  for (const p of plan) oneByOne.push(await bid(alone, p.buyerId, p.amount, p.over));

  // Bid ids differ between the two auctions: compare them by the position of the bid that got them.
  const idsOf = (a: AuctionTerms, outs: typeof inTurn) => {
    const at = new Map<string, number>();
    outs.forEach((o, i) => { if (o.code === Outcome.Applied) at.set(o.bidId, i); });
    return (id: string) => at.get(id) ?? id;
  };
  const [posBatched, posAlone] = [idsOf(batched, inTurn), idsOf(alone, oneByOne)];
  const comparable = (o: (typeof inTurn)[number], a: AuctionTerms, pos: (id: string) => number | string) => {
    const { ...c } = o as Record<string, unknown>;
    if ('bidId' in c) c.bidId = pos(String(c.bidId));
    if ('endsAt' in c) c.endsAt = Number(c.endsAt) - a.endsAt; // the two auctions were created a moment apart
    if ('closed' in c && c.closed) delete c.endsAt; // a buy-now ends the auction at its own moment
    if ('retryAfterMs' in c) delete c.retryAfterMs;
    return c;
  };
  for (let i = 0; i < plan.length; i++) {
    const expected = comparable(oneByOne[i]!, alone, posAlone);
    t.same(comparable(inTurn[i]!, batched, posBatched), expected, `bid ${i + 1}: ${JSON.stringify(expected)}`);
  }
  const codes = new Set<Outcome>(oneByOne.map((o) => o.code));
  for (const c of [Outcome.Applied, Outcome.AlreadyApplied, Outcome.BidTooLow, Outcome.NotAboveOwnBid, Outcome.Closed, Outcome.RateLimited, Outcome.IdempotencyMismatch]) {
    t.ok(codes.has(c), `the plan produces ${Outcome[c]}`);
  }

  const state = async (a: AuctionTerms) => {
    const live = (await readLiveAuction(redis, a.id))!;
    const book = await redis.zrevrange(auctionKeys.book(a.id), 0, -1, 'WITHSCORES');
    const members = [];
    for (let i = 0; i < book.length; i += 2) members.push(`${/^\d+:([^:]+):/.exec(book[i]!)![1]}@${book[i + 1]}`);
    return { price: live.price, leader: live.leader, status: live.status, bidCount: live.bidCount, book: members,
      history: await redis.zcard(auctionKeys.history(a.id)), events: await outboxTypes(a) };
  };
  t.same(await state(batched), await state(alone), 'the same price, leader, status, book, history and events');
  t.equal((await state(batched)).status, 'closed', 'closed by the buy-now');

  // Decided in one call: the first 32 bids share the call's clock.
  const placedAt = new Set((await redis.xrange(auctionKeys.outbox(batched.id), '-', '+'))
    .map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]!))
    .filter((e) => e.placedAt !== undefined && posBatched(e.bidId) as number < 32).map((e) => e.placedAt));
  t.equal(placedAt.size, 1, 'one clock reading for the bids of one call');
});

t.test('an idempotency key whose auction state is gone answers unknown auction, and a failed call fails every bid of its batch', async (t) => {
  const a = await auction();
  const u = newUserId();
  const withKey = { idempotencyKey: 'lost', fingerprint: 'f' };
  t.equal((await bid(a, u, 1000, withKey)).code, Outcome.Applied);
  await redis.del(auctionKeys.auction(a.id)); // the record outlives the auction's state (the api then loads it from Postgres)
  t.match(await Promise.all([bid(a, u, 1000, withKey), bid(a, newUserId(), 1100)]), [{ code: Outcome.NotFound }, { code: Outcome.NotFound }],
    'answered, not a script error, for the replay and the bid beside it');

  const closed = createRedis(cfg, { name: 'lua-auction-test-closed' });
  await closed.quit();
  const b = await auction();
  const settled = await Promise.allSettled([1000, 1100, 1200].map((amount) =>
    placeBid(closed, { auctionId: b.id, buyerId: newUserId(), amount, bidId: newBidId(b.id), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000 })));
  t.same(settled.map((s) => s.status), ['rejected', 'rejected', 'rejected'], 'each bid of the failed call is rejected (none left waiting)');
  t.equal((await readLiveAuction(redis, b.id))?.bidCount, 0, 'and nothing was placed');
});

t.test('an auction hash without the cached top two (an older release loaded it) has them computed from the book', async (t) => {
  const a = await auction({ rule: 'abs:10', startPrice: 100 });
  const [x, y, z] = [newUserId(), newUserId(), newUserId()];
  t.equal((await bid(a, x, 100, { maxAmount: 300 })).code, Outcome.Applied);
  t.equal((await bid(a, y, 150, { maxAmount: 200 })).code, Outcome.Applied);
  await redis.hdel(auctionKeys.auction(a.id), 'top');
  // Read as "no bids", a missing cache would make z lead at 220: only the book says x (300) leads at 230.
  t.match(await bid(a, z, 220), { code: Outcome.Applied, leading: false, currentPrice: 230 }, 'priced from the book: x (300) over z (220)');
  t.equal(await redis.hget(auctionKeys.auction(a.id), 'top'), (await topFromBook(a)).top, 'and the cache stored again');
  t.equal(await redis.hget(auctionKeys.auction(a.id), 'top'), `${x}|${(await readLiveAuction(redis, a.id))!.leaderBid}|100|300|${z}|220`, 'leader x (amount 100, max 300), runner-up z (220)');
});

t.test('increment rules: percentage and tiered', async (t) => {
  const pct = await auction({ rule: 'pct:500', startPrice: 1000 });
  t.match(await bid(pct, newUserId(), 1000), { nextMinimum: 1050 });
  t.match(await bid(pct, newUserId(), 1051), { nextMinimum: 1051 + 53 }, 'rounded up');
  const tiers = await auction({ rule: 'tier:0:10,1000:50,5000:100', startPrice: 900 });
  t.match(await bid(tiers, newUserId(), 900), { nextMinimum: 910 });
  t.match(await bid(tiers, newUserId(), 1000), { nextMinimum: 1050 });
  t.match(await bid(tiers, newUserId(), 5000), { nextMinimum: 5100 });
});

t.test("the api's increments (incrementOf, for GET's nextMinimumBid) equal the scripts' for every kind of rule", async (t) => {
  // increment() exactly as the library defines it: auctionBook.lua, then a call of it.
  const book = readFileSync(join(projectRoot, 'lua', 'includes', 'auctionBook.lua'), 'utf8');
  const luaIncrement = async (rule: string, price: number) =>
    Number(await redis.eval(`${book}\nreturn string.format('%d', increment(ARGV[1], tonumber(ARGV[2])))`, 0, rule, price));
  let seed = 20261122;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const rules: IncrementRule[] = [
    { type: 'absolute', amount: 1 }, { type: 'absolute', amount: 250 },
    { type: 'percentage', basisPoints: 1 }, { type: 'percentage', basisPoints: 333 }, { type: 'percentage', basisPoints: 10_000 },
    { type: 'tiered', tiers: [{ from: 0, increment: 10 }, { from: 1000, increment: 50 }, { from: 5000, increment: 100 }] },
    { type: 'tiered', tiers: [{ from: 0, increment: 7 }] },
  ];
  for (let i = 0; i < 20; i++) {
    const tiers = [{ from: 0, increment: 1 + rnd(500) }];
    for (let k = 0; k < rnd(6); k++) tiers.push({ from: tiers[tiers.length - 1]!.from + 1 + rnd(100_000), increment: 1 + rnd(10_000) });
    rules.push({ type: 'tiered', tiers }, { type: 'percentage', basisPoints: 1 + rnd(10_000) });
  }
  let compared = 0;
  const differ: string[] = [];
  for (const rule of rules) {
    const prices = [0, 1, 99, 100, 999, 1000, 1001, 4999, 5000, 5001, MAX_AUCTION_AMOUNT, ...Array.from({ length: 15 }, () => rnd(2_000_000_000))];
    if (rule.type === 'tiered') for (const tier of rule.tiers) prices.push(tier.from - 1, tier.from, tier.from + 1);
    for (const price of prices.filter((p) => p >= 0)) {
      const [ts, lua] = [incrementOf(rule, price), await luaIncrement(encodeRule(rule), price)];
      compared++;
      if (ts !== lua) differ.push(`${encodeRule(rule)} at ${price}: api ${ts}, script ${lua}`);
    }
  }
  t.same(differ, [], `${compared} rule and price pairs agree`);
  t.ok(compared > 1000);
});

t.test('soft close: accepted bids extend to now + W, never past the hard cap; refused bids never', async (t) => {
  const now = Date.now();
  const a = await auction({ endsAt: now + 3000, softCloseMs: 10_000, hardCloseAt: now + 8000 });
  const u = newUserId();
  t.match(await bid(a, u, 500), { code: Outcome.BidTooLow });
  t.equal((await readLiveAuction(redis, a.id))?.endsAt, a.endsAt, 'a refused bid extends nothing');
  const r = await bid(a, u, 1000);
  t.equal(r.code === Outcome.Applied && r.endsAt, a.hardCloseAt, 'capped at the hard close');
  t.equal((await readLiveAuction(redis, a.id))?.endsAt, a.hardCloseAt);
  t.match(await lastEvent(a, 'extended'), { endsAt: a.hardCloseAt });

  const b = await auction({ endsAt: now + 3000, softCloseMs: 5000, hardCloseAt: now + 600_000 });
  const r2 = await bid(b, u, 1000);
  t.ok(r2.code === Outcome.Applied && r2.endsAt > b.endsAt && r2.endsAt <= Date.now() + 5000, 'extended to now + W');
  const far = await auction({ endsAt: now + 600_000, softCloseMs: 5000 });
  const r3 = await bid(far, u, 1000);
  t.equal(r3.code === Outcome.Applied && r3.endsAt, far.endsAt, 'a bid outside the window extends nothing');
  t.notOk(await lastEvent(far, 'extended'));
});

t.test('buy-now closes at once for that bidder; a second buy-now is refused', async (t) => {
  const a = await auction({ buyNowPrice: 9000, reservePrice: 5000 });
  const [x, y, z] = [newUserId(), newUserId(), newUserId()];
  await bid(a, z, 1000, { maxAmount: 4000 });
  const [r1, r2] = await Promise.all([bid(a, x, 9500), bid(a, y, 9000)]);
  const won = [r1, r2].filter((r) => r.code === Outcome.Applied);
  t.equal(won.length, 1, 'one buy-now wins');
  t.match(won[0], { closed: true, leading: true, currentPrice: 9000 });
  t.match([r1, r2].find((r) => r.code !== Outcome.Applied), { code: Outcome.Closed, status: 'closed' });
  const live = await readLiveAuction(redis, a.id);
  t.match(live, { status: 'closed', closeReason: 'buy_now', price: 9000 });
  const closed = await lastEvent(a, 'closed');
  t.equal(closed.reason, 'buy_now');
  t.equal(closed.offers.length, 1, 'the proxy below the reserve is not offered the lot');
  t.match(closed.offers[0], { price: 9000, bonus: 0 });
  t.same(await outboxTypes(a), ['bid_placed', 'bid_placed', 'closed'], 'the outbid bidder is named in the bid, not a separate event');
  const placed = (await redis.xrange(auctionKeys.outbox(a.id), '-', '+')).map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]!));
  t.equal(placed[1].outbid, z, 'the buy-now bid names the leader it outbid');
  t.notOk('outbid' in placed[0], 'the first bid outbid nobody');
});

t.test('retractBid: falls back to the best remaining bid, refuses late, foreign or unknown bids', async (t) => {
  const now = Date.now();
  const a = await auction({ endsAt: now + 600_000, softCloseMs: 10_000 });
  const [x, y] = [newUserId(), newUserId()];
  const x1 = await bid(a, x, 1000);
  const y1 = await bid(a, y, 1100, { maxAmount: 2000 });
  const x2 = await bid(a, x, 2500);
  t.match(x2, { leading: true, currentPrice: 2500 });
  if (x1.code !== Outcome.Applied || x2.code !== Outcome.Applied || y1.code !== Outcome.Applied) throw new Error('setup');
  t.match(await retractBid(redis, a.id, y, x2.bidId), { code: Outcome.UnknownBid }, "another bidder's bid");
  t.match(await retractBid(redis, a.id, x, newBidId(a.id)), { code: Outcome.UnknownBid });
  t.match(await retractBid(redis, newAuctionId(), x, x2.bidId), { code: Outcome.NotFound });
  t.match(await retractBid(redis, a.id, x, x2.bidId), { code: Outcome.Applied, price: 1100 }, 'x falls back to 1000; y leads one increment above it');
  let live = await readLiveAuction(redis, a.id);
  t.equal(live?.leader, y);
  t.equal(live?.bidCount, 2);
  t.match(await retractBid(redis, a.id, x, x2.bidId), { code: Outcome.AlreadyApplied }, 'retracting twice is harmless');
  t.match(await retractBid(redis, a.id, y, y1.bidId), { code: Outcome.Applied, price: 1000 });
  live = await readLiveAuction(redis, a.id);
  t.equal(live?.leader, x, 'the leader falls back to the best remaining bid');
  t.match(await lastEvent(a, 'bid_retracted'), { bidId: y1.bidId, price: 1000, leader: x, fallbackBid: '' });
  t.match(await retractBid(redis, a.id, x, x1.bidId), { code: Outcome.Applied, price: null });
  t.equal((await readLiveAuction(redis, a.id))?.leader, null);
  t.equal(await redis.zcard(auctionKeys.book(a.id)), 0);

  // One instant for both: two Date.now() calls a millisecond apart would let the bid extend endsAt up to hardCloseAt.
  const lateEnd = Date.now() + 5000;
  const late = await auction({ endsAt: lateEnd, softCloseMs: 10_000, hardCloseAt: lateEnd });
  const l1 = await bid(late, x, 1000);
  if (l1.code !== Outcome.Applied) throw new Error('setup');
  t.equal((await readLiveAuction(redis, late.id))?.endsAt, lateEnd, 'the hard close caps the soft-close extension');
  t.match(await retractBid(redis, late.id, x, l1.bidId), { code: Outcome.TooLateToRetract });
  t.match(await retractBid(redis, late.id, x, l1.bidId, true), { code: Outcome.Applied }, 'an operator deleting the buyer may');
  t.equal((await readLiveAuction(redis, late.id))?.endsAt, lateEnd, 'a retraction never extends');
  await closeAuction(redis, late.id, 'cancel');
  t.match(await retractBid(redis, late.id, x, l1.bidId), { code: Outcome.AlreadyApplied });
  const l2 = await bid(a, x, 1000);
  await closeAuction(redis, a.id, 'cancel');
  if (l2.code !== Outcome.Applied) throw new Error('setup');
  t.match(await retractBid(redis, a.id, x, l2.bidId), { code: Outcome.Closed, status: 'cancelled' });
});

t.test('promoteBid doubles a standing bid; refuses when off, closed, or not live', async (t) => {
  const a = await auction({ promoter: true });
  const [x, y] = [newUserId(), newUserId()];
  const x1 = await bid(a, x, 1000);
  const y1 = await bid(a, y, 1500);
  if (x1.code !== Outcome.Applied || y1.code !== Outcome.Applied) throw new Error('setup');
  t.match(await promoteBid(redis, a.id, x1.bidId, 1e12), { code: Outcome.Applied, buyerId: x, added: 1000, price: 2000 });
  const live = await readLiveAuction(redis, a.id);
  t.equal(live?.leader, x, 'the doubled bid (2000) now leads');
  t.match(await lastEvent(a, 'bid_doubled'), { bidId: x1.bidId, added: 1000, amount: 2000, bonus: 1000 });
  const x2 = await bid(a, x, 2100);
  t.match(x2, { code: Outcome.Applied });
  if (x2.code !== Outcome.Applied || y1.code !== Outcome.Applied) throw new Error('setup');
  t.match(await promoteBid(redis, a.id, x2.bidId, 1e12), { code: Outcome.UnknownBid }, 'a lucky bidder is not doubled twice (the bonus carried to their new bid)');
  t.equal((await lastEvent(a, 'bid_placed')).bidId, x2.bidId);
  t.match(await promoteBid(redis, a.id, y1.bidId, 2999), { code: Outcome.UnknownBid }, 'would pass the largest amount');
  t.match(await promoteBid(redis, a.id, x1.bidId, 1e12), { code: Outcome.UnknownBid }, 'a superseded bid is not live');
  t.match(await promoteBid(redis, a.id, newBidId(a.id), 1e12), { code: Outcome.UnknownBid });
  const off = await auction();
  const o1 = await bid(off, x, 1000);
  if (o1.code !== Outcome.Applied) throw new Error('setup');
  t.match(await promoteBid(redis, off.id, o1.bidId, 1e12), { code: Outcome.PromoterOff });
  t.match(await promoteBid(redis, newAuctionId(), o1.bidId, 1e12), { code: Outcome.NotFound });
  await closeAuction(redis, a.id, 'cancel');
  t.match(await promoteBid(redis, a.id, x2.bidId, 1e12), { code: Outcome.Closed, status: 'cancelled' });
});

t.test('closeAuction: not due, closes once with ordered offers above the reserve, then refuses bids', async (t) => {
  const a = await auction({ endsAt: Date.now() + 400, softCloseMs: 0, reservePrice: 1500 });
  const [x, y, z] = [newUserId(), newUserId(), newUserId()];
  await bid(a, x, 1000, { maxAmount: 3000 });
  await bid(a, y, 1200, { maxAmount: 2000 });
  await bid(a, z, 1300);
  t.match(await closeAuction(redis, a.id, 'time'), { code: Outcome.NotDue, endsAt: a.endsAt });
  t.match(await closeAuction(redis, newAuctionId(), 'time'), { code: Outcome.NotFound });
  await sleep(450);
  t.match(await closeAuction(redis, a.id, 'time'), { code: Outcome.Applied, status: 'closed', price: 2100, leader: x, reserveMet: true });
  t.match(await closeAuction(redis, a.id, 'time'), { code: Outcome.AlreadyApplied, status: 'closed' });
  const ev = await lastEvent(a, 'closed');
  t.same(ev.offers.map((o: any) => [o.buyerId, o.price]), [[x, 2100], [y, 2000]], 'y at its own highest bid; z (1300) is below the reserve');
  t.match(await bid(a, z, 5000), { code: Outcome.Closed, status: 'closed' });

  const unmet = await auction({ endsAt: Date.now() + 100, softCloseMs: 0, reservePrice: 99_999 });
  await bid(unmet, x, 1000);
  await sleep(150);
  t.match(await closeAuction(redis, unmet.id, 'time'), { code: Outcome.Applied, reserveMet: false });
  t.same((await lastEvent(unmet, 'closed')).offers, []);
  const empty = await auction({ endsAt: Date.now() + 50, softCloseMs: 0 });
  await sleep(100);
  t.match(await closeAuction(redis, empty.id, 'time'), { code: Outcome.Applied, price: null, leader: '', reserveMet: false });

  const cancelled = await auction();
  await bid(cancelled, x, 1000);
  t.match(await closeAuction(redis, cancelled.id, 'cancel'), { code: Outcome.Applied, status: 'cancelled' });
  t.same((await lastEvent(cancelled, 'cancelled')).bidders, [x]);
  t.match(await closeAuction(redis, cancelled.id, 'time'), { code: Outcome.AlreadyApplied, status: 'cancelled' });
});

t.test('every change is published live with an anonymous leader handle', async (t) => {
  const sub = createRedis(cfg, { name: 'lua-auction-sub', autoPipelining: false });
  t.teardown(() => sub.quit());
  const got: string[] = [];
  sub.on('message', (_c: string, m: string) => got.push(m));
  await sub.subscribe(LIVE_CHANNEL);
  const a = await auction();
  const x = newUserId();
  await bid(a, x, 1000);
  for (let i = 0; i < 50 && !got.some((m) => m.startsWith(`auction/${a.id} `)); i++) await sleep(20);
  const msg = got.find((m) => m.startsWith(`auction/${a.id} `))!;
  const data = JSON.parse(msg.slice(msg.indexOf(' ') + 1));
  t.match(data, { auctionId: a.id, price: 1000, nextMinimum: 1100, bidCount: 1, status: 'open', reserveMet: true, endsAt: a.endsAt });
  t.match(data.leader, /^bidder-[0-9a-f]{8}$/);
  t.notOk(msg.includes(x), 'the buyer id is never published');
});
