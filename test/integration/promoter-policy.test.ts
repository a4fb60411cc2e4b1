/**
 * The promoter's choice is pluggable: the scheduler takes policies through
 * its options, by name, and an auction names the one it uses. The scheduler
 * here works on a Redis database of its own, so no other test's scheduler
 * can take its promotions.
 */
import t from 'tap';
import { boot } from '../helpers/system.js';
import { bid, createAuction } from '../helpers/auctions.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { createLogger } from '../../src/platform/log.js';
import { Auctions } from '../../src/auctions/auctions.js';
import { Bids } from '../../src/auctions/bids.js';
import { Scheduler } from '../../src/auctions/scheduler.js';
import { promoterPolicies, type PromoterPolicy } from '../../src/auctions/promoter.js';
import { parseStoredBid } from '../../src/auctions/codec.js';
import { AUCTION_PROMOTIONS, auctionKeys } from '../../src/auctions/keys.js';
import { newUserId } from '../../src/platform/ids.js';

const sys = await boot(t, { api: false });
const url = new URL(sys.cfg.STAMPEDE_REDIS_URL);
url.pathname = '/13';
const redis = createRedis(url.toString(), { name: 'promoter-policy-test' });
// Database 13 is this file's alone.
await redis.flushdb();
t.teardown(async () => {
  await redis.flushdb();
  await redis.quit();
});
const auctions = new Auctions(sys.pool, redis);
const bids = new Bids(redis, auctions, { rateMax: 1000, rateWindowMs: 1000, idempotencyTtlMs: 1000 });

/** An auction with three standing bids (1000, 2000 and 3000 by three bidders) whose promotion is due now. */
async function threeBids(policy: string) {
  const a = await createAuction(sys.pool, redis, { promoter: true });
  await sys.pool.query(`UPDATE auctions SET promoter = jsonb_set(promoter, '{policy}', to_jsonb($2::text)) WHERE id = $1`, [a.id, policy]);
  const ids = [];
  for (const amount of [1000, 2000, 3000]) ids.push(await bid(redis, a, newUserId(), amount));
  await redis.zadd(AUCTION_PROMOTIONS, Date.now() - 1, a.id);
  return { a, ids };
}

const doubledOf = async (auctionId: string) =>
  Object.entries(await redis.hgetall(auctionKeys.bids(auctionId))).map(([id, raw]) => parseStoredBid(id, raw)).filter((b) => b.bonus > 0).map((b) => b.bidId);

t.test("a policy passed in the scheduler's options replaces the built-in one of that name", async (t) => {
  const seen: number[][] = [];
  // The house's least expensive choice: the lowest standing bid.
  const lowest: PromoterPolicy = (bids) => {
    seen.push(bids.map((b) => b.amount).sort((x, y) => x - y));
    return [...bids].sort((x, y) => x.amount - y.amount)[0];
  };
  const scheduler = new Scheduler({ redis, auctions, bids, log: createLogger('silent', 'test'), tickMs: 1000, random: () => 0.999, policies: { uniform: lowest } });
  const { a, ids } = await threeBids('uniform');
  await scheduler.tick();
  t.same(seen, [[1000, 2000, 3000]], 'the policy saw every standing bid');
  t.same(await doubledOf(a.id), [ids[0]], 'and its choice, the lowest, was doubled (the built-in uniform with random 0.999 picks the last)');
  t.equal(scheduler.promoted, 1);
  t.ok(Number(await redis.zscore(AUCTION_PROMOTIONS, a.id)) > Date.now(), 'the next promotion is scheduled');
});

t.test('without an override, the auction’s named built-in policy decides', async (t) => {
  const scheduler = new Scheduler({ redis, auctions, bids, log: createLogger('silent', 'test'), tickMs: 1000, random: () => 0.999 });
  const { a, ids } = await threeBids('recency');
  await scheduler.tick();
  t.same(await doubledOf(a.id), [ids[2]], 'recency with random 0.999: the latest bid');
  const b = await threeBids('uniform');
  const standing = await bids.standingBids(b.a.id);
  t.equal(standing.length, 3);
  const lowRandom = new Scheduler({ redis, auctions, bids, log: createLogger('silent', 'test'), tickMs: 1000, random: () => 0 });
  await lowRandom.tick();
  t.same(await doubledOf(b.a.id), [promoterPolicies.uniform(standing, () => 0)!.bidId], 'uniform with random 0: the first standing bid, and only it');
  t.same(await doubledOf(a.id), [ids[2]], 'the earlier auction, not due again, is untouched');
});
