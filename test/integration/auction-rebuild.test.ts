/**
 * `stampede rebuild auction <id>`: the Redis state rebuilt from Postgres
 * (the auction's terms and its event log) equals the live state the
 * scripts wrote, key by key, after a seeded random bid war of manual and
 * proxy bids, retractions, promoter doublings and soft-close extensions,
 * for an auction still open and for one closed. A log with a gap, or one
 * behind Redis, is refused and Redis is left as it was.
 */
import { Outcome } from '../../src/platform/redis/outcomes.js';
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { boot, sleep, TEST_ENV } from '../helpers/system.js';
import { closeWhenDue, createAuction, waitLogged, waitSettled, type TestAuction } from '../helpers/auctions.js';
import type { Redis } from '../../src/platform/redis/client.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { RELAY_GROUP } from '../../src/platform/messaging/outbox.js';
import { promoteBid, readLiveAuction, retractBid } from '../../src/auctions/scripts.js';
import { placeBid } from '../../src/auctions/batcher.js';
import { rebuildAuction } from '../../src/auctions/rebuild.js';
import { newBidId } from '../../src/platform/ids.js';
import { projectRoot } from '../../src/platform/paths.js';

const sys = await boot(t, { api: false, relay: true, worker: true });

/** mulberry32: a small seeded generator, so a failing war can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

interface WarStats {
  accepted: number;
  retracted: number;
  doubled: number;
  refused: number;
}

/** `steps` random actions on the auction: bids (manual or proxy), retractions, doublings. */
async function war(a: TestAuction, buyers: string[], rand: () => number, steps: number, stats: WarStats): Promise<void> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const mine = new Map<string, string[]>();
  for (let i = 0; i < steps; i++) {
    const live = (await readLiveAuction(sys.redis, a.id))!;
    const roll = rand();
    if (roll < 0.15 && mine.size > 0) {
      const buyer = pick([...mine.keys()]);
      const bidId = pick(mine.get(buyer)!);
      let r = await retractBid(sys.redis, a.id, buyer, bidId);
      if (r.code === Outcome.TooLateToRetract) r = await retractBid(sys.redis, a.id, buyer, bidId, true);
      if (r.code === Outcome.Applied) stats.retracted++;
      else stats.refused++;
    } else if (roll < 0.25) {
      const standing = Object.values(await sys.redis.hgetall(auctionKeys.standing(a.id)));
      const r = standing.length > 0 ? await promoteBid(sys.redis, a.id, pick(standing), 1e12) : undefined;
      if (r?.code === Outcome.Applied) stats.doubled++;
      else stats.refused++;
    } else {
      const buyer = pick(buyers);
      const amount = (live.price === null ? a.startPrice : live.price + 100) + Math.floor(rand() * 4) * 50;
      const maxAmount = rand() < 0.4 ? amount + Math.floor(rand() * 20) * 100 : undefined;
      const r = await placeBid(sys.redis, {
        auctionId: a.id, buyerId: buyer, amount, maxAmount, bidId: newBidId(a.id), rateMax: 1_000_000, rateWindowMs: 1000, idempotencyTtlMs: 60_000,
      });
      if (r.code === Outcome.Applied) {
        stats.accepted++;
        mine.set(buyer, [...(mine.get(buyer) ?? []), r.bidId]);
      } else stats.refused++;
    }
  }
}

/** Every key of the auction but its outbox, rate counters and idempotency records, canonically. */
async function dump(redis: Redis, auctionId: string): Promise<Record<string, unknown>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `{auction:${auctionId}}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  const out: Record<string, unknown> = {};
  for (const key of keys.sort()) {
    if (key === auctionKeys.outbox(auctionId) || /:(rate|idem):/.test(key)) continue;
    const type = await redis.type(key);
    if (type === 'hash') out[key] = Object.fromEntries(Object.entries(await redis.hgetall(key)).sort(([x], [y]) => (x < y ? -1 : 1)));
    else if (type === 'zset') out[key] = await redis.zrange(key, 0, -1, 'WITHSCORES');
    else out[key] = { unexpected: type };
  }
  return out;
}

async function allKeys(redis: Redis, auctionId: string): Promise<string[]> {
  const [, keys] = await redis.scan('0', 'MATCH', `{auction:${auctionId}}*`, 'COUNT', 100_000);
  return keys;
}

/** `stampede rebuild auction <id>` as a real child process. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'rebuild', 'auction', ...args], { cwd: projectRoot, env: { ...TEST_ENV } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function warOn(a: TestAuction, seed: number, t: Test): Promise<WarStats> {
  const rand = seeded(seed);
  const buyers = await sys.createBuyers(8, { currency: 'EUR', amount: 10_000_000 });
  const stats: WarStats = { accepted: 0, retracted: 0, doubled: 0, refused: 0 };
  // Outside the soft-close window: bids, retractions, doublings.
  await war(a, buyers, rand, 60, stats);
  // Inside it: every accepted bid extends the close.
  const live = (await readLiveAuction(sys.redis, a.id))!;
  await sleep(Math.max(0, live.endsAt - a.softCloseMs - Date.now() + 50));
  await war(a, buyers, rand, 15, stats);
  t.ok(stats.accepted > 20 && stats.retracted > 0 && stats.doubled > 0, 'a war of bids, retractions and doublings', { ...stats });
  t.comment(`seed ${seed}: ${JSON.stringify(stats)}`);
  return stats;
}

async function types(auctionId: string): Promise<Record<string, number>> {
  const { rows } = await sys.pool.query<{ type: string; n: number }>('SELECT type, count(*)::int AS n FROM auction_events WHERE auction_id = $1 GROUP BY type ORDER BY type', [auctionId]);
  return Object.fromEntries(rows.map((r) => [r.type, r.n]));
}

const warTerms = () => ({ promoter: true, endsAt: Date.now() + 2500, softCloseMs: 1500, hardCloseAt: Date.now() + 60_000 });

t.test('an open auction rebuilt after a random bid war equals the live one', async (t) => {
  const a = await createAuction(sys.pool, sys.redis, warTerms());
  await warOn(a, 20241125, t);
  const seq = await waitLogged(sys.pool, sys.redis, a.id);
  const kinds = await types(a.id);
  t.ok(kinds.extended! > 0, 'the close was extended', kinds);
  t.comment(`log: ${JSON.stringify(kinds)}`);
  const live = await dump(sys.redis, a.id);
  t.comment(`keys: ${Object.keys(live).length}, bids: ${Object.keys(live[auctionKeys.bids(a.id)] as object).length}`);
  t.equal((live[auctionKeys.auction(a.id)] as Record<string, string>).status, 'open');

  await sys.redis.del(...(await allKeys(sys.redis, a.id)));
  t.same(await dump(sys.redis, a.id), {}, 'every key of the auction deleted, outbox included');
  const result = await rebuildAuction(sys.pool, sys.redis, a.id);
  t.match(result, { auctionId: a.id, status: 'open', seq });
  t.same(await dump(sys.redis, a.id), live, 'the rebuilt state equals the live one, key by key');
  const groups = (await sys.redis.xinfo('GROUPS', auctionKeys.outbox(a.id))) as unknown[][];
  t.ok(groups.some((g) => g[1] === RELAY_GROUP), 'the outbox and its relay group exist again');

  // And the rebuilt auction takes bids like the live one would.
  const [late] = await sys.createBuyers(1, { currency: 'EUR', amount: 10_000_000 });
  const price = (await readLiveAuction(sys.redis, a.id))!.price ?? a.startPrice;
  const r = await placeBid(sys.redis, { auctionId: a.id, buyerId: late!, amount: price + 1_000_000, bidId: newBidId(a.id), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000 });
  t.match(r, { code: Outcome.Applied, leading: true });
  t.equal(await waitLogged(sys.pool, sys.redis, a.id), seq + (r.code === Outcome.Applied && r.endsAt > result.endsAt ? 2 : 1), 'its next event follows the log without a gap');
});

t.test('a closed (and settled) auction rebuilt by the CLI equals the live one', async (t) => {
  const a = await createAuction(sys.pool, sys.redis, warTerms());
  await warOn(a, 7, t);
  t.match(await closeWhenDue(sys.redis, a.id), { code: Outcome.Applied, status: 'closed' });
  await waitSettled(sys.pool, a.id);
  await waitLogged(sys.pool, sys.redis, a.id);
  const live = await dump(sys.redis, a.id);
  t.match(live[auctionKeys.auction(a.id)], { status: 'closed', closeReason: 'time' });

  await sys.redis.del(...(await allKeys(sys.redis, a.id)));
  const run = await cli(a.id);
  t.equal(run.code, 0, 'the command succeeds', { stderr: run.stderr });
  t.match(JSON.parse(run.stdout), { auctionId: a.id, status: 'closed' });
  t.same(await dump(sys.redis, a.id), live, 'the rebuilt state equals the live one, key by key');
});

t.test('a buy-now close is rebuilt with its price and end', async (t) => {
  const a = await createAuction(sys.pool, sys.redis, { buyNowPrice: 5000, promoter: true });
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: 10_000_000 });
  const bid = (buyerId: string, amount: number, maxAmount?: number) =>
    placeBid(sys.redis, { auctionId: a.id, buyerId, amount, maxAmount, bidId: newBidId(a.id), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000 });
  await bid(y!, 1000, 9000);
  t.match(await bid(x!, 5000), { code: Outcome.Applied, closed: true });
  await waitSettled(sys.pool, a.id);
  await waitLogged(sys.pool, sys.redis, a.id);
  const live = await dump(sys.redis, a.id);
  t.match(live[auctionKeys.auction(a.id)], { status: 'closed', closeReason: 'buy_now', price: '5000', leader: x });
  await sys.redis.del(...(await allKeys(sys.redis, a.id)));
  await rebuildAuction(sys.pool, sys.redis, a.id);
  t.same(await dump(sys.redis, a.id), live);
});

t.test('a log with a gap, or behind Redis, is refused and Redis is left alone', async (t) => {
  const a = await createAuction(sys.pool, sys.redis);
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: 10_000_000 });
  for (const [buyer, amount] of [[x, 1000], [y, 1100], [x, 1200]] as const) {
    await placeBid(sys.redis, { auctionId: a.id, buyerId: buyer!, amount, bidId: newBidId(a.id), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000 });
  }
  await waitLogged(sys.pool, sys.redis, a.id);
  const live = await dump(sys.redis, a.id);
  await sys.pool.query('DELETE FROM auction_events WHERE auction_id = $1 AND seq = 2', [a.id]);
  const gap = await cli(a.id);
  t.equal(gap.code, 1, 'exit 1');
  t.match(gap.stderr, `stampede: rebuild refused: auction ${a.id}: its log has a gap: seq 2 is missing`);
  t.same(await dump(sys.redis, a.id), live, 'Redis untouched');

  await sys.pool.query('DELETE FROM auction_events WHERE auction_id = $1 AND seq = 3', [a.id]);
  await sys.pool.query('UPDATE auction_events SET seq = 1 WHERE auction_id = $1 AND seq = 1', [a.id]);
  const behind = await cli(a.id);
  t.equal(behind.code, 1);
  t.match(behind.stderr, /Redis is ahead of the log \(seq 3 live, 1 logged\)/);
  t.same(await dump(sys.redis, a.id), live, 'Redis untouched');
  const forced = await cli(a.id, '--force');
  t.equal(forced.code, 0, 'with --force it rebuilds what the log has');
  t.match(await readLiveAuction(sys.redis, a.id), { seq: 1, bidCount: 1, leader: x, price: 1000 });

  const unknown = await cli('auc_000000000000');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, 'auction auc_000000000000 is unknown to Postgres');
  const bad = await cli('nope');
  t.not(bad.code, 0);
  t.match(bad.stderr, 'not an auction id');
});
