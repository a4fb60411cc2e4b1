/**
 * What the api's in-memory caches cost per request, measured alone (issue
 * 17): the known-buyers LRU (src/buyers/known-buyers.ts, up to
 * STAMPEDE_KNOWN_BUYERS_MAX ids) looked up for every purchase and bid, and
 * the verified-token LRU (src/platform/auth/tokens.ts). For N ids it times,
 * in ns per call over random ids: a hit in a full LRU, the same in a plain
 * Set (the floor), and a miss that inserts into a full LRU (an eviction per
 * call, the path of a node seeing more distinct buyers than it holds).
 *
 *     node dist/load/autocannon/lru-cost.js          # LRU_SIZES=100000,1000000
 */
import { LRUCache } from 'lru-cache';
import { newUserId } from '../../src/platform/ids.js';

const SIZES = (process.env.LRU_SIZES ?? '100000,1000000').split(',').map(Number);
const CALLS = 2_000_000;

function time(calls: number, f: (i: number) => void): number {
  for (let i = 0; i < 100_000; i++) f(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) f(i);
  return Number(process.hrtime.bigint() - t0) / calls;
}

for (const n of SIZES) {
  const ids = Array.from({ length: n }, () => newUserId());
  const order = Uint32Array.from({ length: CALLS + 100_000 }, () => Math.floor(Math.random() * n));
  const lru = new LRUCache<string, true>({ max: n });
  const t0 = Date.now();
  for (const id of ids) lru.set(id, true);
  const fillMs = Date.now() - t0;
  const set = new Set(ids);
  let found = 0;
  const lruHit = time(CALLS, (i) => void (lru.get(ids[order[i]!]!) && found++));
  const setHit = time(CALLS, (i) => void (set.has(ids[order[i]!]!) && found++));
  const fresh = Array.from({ length: CALLS + 100_000 }, () => newUserId());
  const lruEvict = time(CALLS, (i) => void lru.set(fresh[i]!, true));
  const rssMB = Math.round(process.memoryUsage().rss / 1048576);
  console.log(JSON.stringify({ ids: n, fillMs, lruHitNs: Math.round(lruHit), setHasNs: Math.round(setHit), lruInsertEvictingNs: Math.round(lruEvict), rssMB, found }));
}
