/**
 * Hot sales across shards. One sale's live state is one hash slot, so one
 * Redis core is the ceiling of the hottest drop. A sale created with
 * `shards: K` (2 to MAX_SHARDS) keeps its stock in K slots instead: shard 0
 * under the sale's own keys, shard j under `{sale:<id>:<j>}`, each a whole
 * sale of its own to the scripts (terms, its part of the stock, counters,
 * buyers, in-flight purchases, outbox), decided atomically in its own
 * script. A buyer always decides in the same shard (shardOfBuyer), so the
 * per-buyer limit stays exact; a purchase id names its shard, so settling,
 * cancelling and expiring it find it from the id alone.
 *
 * A buyer's shard running dry while others hold stock is not "sold out":
 * stock is moved to it (refill) by a logged transfer in two atomic steps
 * (lua/sale/transferOut-2.lua on the source, transferIn-2.lua on the
 * destination), each recorded in its shard's transfer log; a transfer left
 * half done by a crash is completed by completeTransfers (the scheduler's
 * sweep runs it), so a unit is never lost nor counted twice. The sale is
 * sold out when every shard is empty; `available + reserved + sold ==
 * stock` holds per shard, and the shards' stocks plus the units in transit
 * add up to the sale's stock (auditShards).
 */
import type { Redis } from 'ioredis';
import { randomId, saleOfPurchase, shardOfPurchase } from '../platform/ids.js';
import { runScript } from '../platform/redis/functions.js';
import { Outcome } from '../platform/redis/outcomes.js';
import { saleKeys, STOCK_CHANNEL } from './keys.js';

/** Most shards one sale may be split across (a purchase id names its shard in one hex digit). */
export const MAX_SHARDS = 16;

/** The id a shard's keys are built from (saleKeys.*): the sale's own for shard 0, `<saleId>:<shard>` for the others. */
export const shardKeyOf = (saleId: string, shard: number): string => (shard === 0 ? saleId : `${saleId}:${shard}`);

/** The id of the keys a purchase lives under: its sale's, or its shard's (the id names both), or undefined for a malformed id. */
export function liveKeyOfPurchase(purchaseId: string): string | undefined {
  const saleId = saleOfPurchase(purchaseId);
  return saleId === undefined ? undefined : shardKeyOf(saleId, shardOfPurchase(purchaseId)!);
}

/** Every shard's key id of a sale split across `shards`. */
export const shardKeysOf = (saleId: string, shards: number): string[] => Array.from({ length: shards }, (_, j) => shardKeyOf(saleId, j));

/** The sale a shard key id (shardKeyOf) belongs to. */
export const saleOfShardKey = (key: string): string => key.split(':')[0]!;

/** The shard a buyer decides in: a hash of the buyer id (FNV-1a), the same in every process. */
export function shardOfBuyer(buyerId: string, shards: number): number {
  if (shards <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < buyerId.length; i++) {
    h ^= buyerId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}

/** `total` units split across `shards` as evenly as whole units allow (the first shards get one more). */
export function splitStock(total: number, shards: number): number[] {
  const base = Math.floor(total / shards);
  return Array.from({ length: shards }, (_, j) => base + (j < total % shards ? 1 : 0));
}

/** A transfer's entry in a shard's log: its units, the other shard, `out` (left the source) or `in` (arrived, and when). */
interface LogEntry { units: number; other: number; state: 'out' | 'in'; at: number }
const entryOf = (v: string): LogEntry => {
  const [units, other, state, at] = v.split(' ');
  return { units: Number(units), other: Number(other), state: state as 'out' | 'in', at: Number(at ?? 0) };
};

/** How long an arrival stays in its destination's log (against a second arrival of a transfer whose source entry lingered): the sweep drops older ones. */
export const ARRIVAL_KEPT_MS = 3_600_000;

/** Takes up to `units` off the source shard and logs the transfer there; returns the units taken (0: none available). */
async function transferOut(redis: Redis, saleId: string, id: string, from: number, to: number, units: number): Promise<number> {
  const key = shardKeyOf(saleId, from);
  const reply = (await runScript(redis, 'transferOut', [saleKeys.sale(key), saleKeys.transfers(key)], [id, units, to])) as number[];
  const code = Number(reply[0]);
  if (code === Outcome.Applied || code === Outcome.AlreadyApplied) return Number(reply[1]);
  if (code === Outcome.SoldOut || code === Outcome.NotFound) return 0;
  throw new Error(`transferOut: unexpected reply ${JSON.stringify(reply)}`);
}

/** Adds the transfer to its destination once, then drops it from the source's log. False when the destination is not in Redis (it stays `out`). */
async function transferIn(redis: Redis, saleId: string, id: string, from: number, to: number, units: number): Promise<boolean> {
  const key = shardKeyOf(saleId, to);
  const reply = (await runScript(redis, 'transferIn', [saleKeys.sale(key), saleKeys.transfers(key)], [id, units, from, STOCK_CHANNEL])) as number[];
  const code = Number(reply[0]);
  if (code === Outcome.NotFound) return false;
  if (code !== Outcome.Applied && code !== Outcome.AlreadyApplied) throw new Error(`transferIn: unexpected reply ${JSON.stringify(reply)}`);
  // Arrived: the source's entry has done its job (the destination's keeps the arrival from repeating).
  await redis.hdel(saleKeys.transfers(shardKeyOf(saleId, from)), id);
  return true;
}

/**
 * Moves `units` from shard `from` to shard `to` as one logged transfer.
 * `crashAfterOut` stops after the first half, as a process dying there
 * would (the fault test's switch). Returns the units moved.
 */
export async function moveStock(redis: Redis, saleId: string, from: number, to: number, units: number, crashAfterOut = false): Promise<number> {
  const id = `t_${randomId(16)}`;
  const taken = await transferOut(redis, saleId, id, from, to, units);
  if (taken === 0 || crashAfterOut) return taken;
  await transferIn(redis, saleId, id, from, to, taken);
  return taken;
}

/**
 * Stock for a buyer whose shard has less than `wanted`: moves half of the
 * richest other shard's available units (at least what is missing, at most
 * all of it) to `shard`, then from the next richest while the shard still
 * holds less than `wanted`. Returns the units moved; 0 when no other shard
 * has any (the sale is sold out).
 */
export async function refill(redis: Redis, saleId: string, shards: number, shard: number, wanted: number): Promise<number> {
  const available = await Promise.all(shardKeysOf(saleId, shards).map(async (key) => Number((await redis.hget(saleKeys.sale(key), 'available')) ?? 0)));
  const donors = available.map((units, j) => ({ units, j })).filter((d) => d.j !== shard && d.units > 0).sort((a, b) => b.units - a.units);
  let missing = Math.max(1, wanted - available[shard]!);
  let moved = 0;
  for (const donor of donors) {
    const got = await moveStock(redis, saleId, donor.j, shard, Math.min(donor.units, Math.max(missing, Math.ceil(donor.units / 2))));
    moved += got;
    missing -= got;
    if (missing <= 0) break;
  }
  return moved;
}

interface InTransit { id: string; from: number; to: number; units: number }

/**
 * The transfers that left shard `from` of the sale and have not arrived: its
 * log's `out` entries, less those the destination's log has as arrived (the
 * mover stopped between the arrival and dropping the source's entry).
 */
async function outOf(redis: Redis, saleId: string, from: number): Promise<InTransit[]> {
  const log = await redis.hgetall(saleKeys.transfers(shardKeyOf(saleId, from)));
  const out = Object.entries(log).map(([id, v]) => ({ id, ...entryOf(v) })).filter((e) => e.state === 'out');
  const arrived = await Promise.all(out.map((e) => redis.hexists(saleKeys.transfers(shardKeyOf(saleId, e.other)), e.id)));
  return out.filter((_, i) => arrived[i] === 0).map(({ id, other, units }) => ({ id, from, to: other, units }));
}

/** The transfers of a sharded sale that left their source and have not arrived (a crash between the halves, or one in progress). */
export async function transfersInTransit(redis: Redis, saleId: string, shards: number): Promise<InTransit[]> {
  return (await Promise.all(Array.from({ length: shards }, (_, from) => outOf(redis, saleId, from)))).flat();
}

/**
 * Completes every transfer that left the shard whose keys' id is `key`
 * (shardKeyOf) and has not arrived: each arrives once, even if its mover is
 * still at it. Returns how many it completed. The scheduler's sweep runs it
 * for every shard it sweeps (src/sales/deadline.ts).
 */
export async function completeTransfersFrom(redis: Redis, key: string): Promise<number> {
  const [saleId, shard] = key.split(':');
  const from = Number(shard ?? 0);
  const logKey = saleKeys.transfers(shardKeyOf(saleId!, from));
  let done = 0;
  // An `out` entry whose transfer arrived already (the mover stopped before dropping it): dropped by transferIn's alreadyApplied path.
  for (const [id, v] of Object.entries(await redis.hgetall(logKey))) {
    const e = entryOf(v);
    if (e.state === 'out' && (await transferIn(redis, saleId!, id, from, e.other, e.units))) done++;
  }
  // Arrivals older than ARRIVAL_KEPT_MS: their source entries are long gone, so no second arrival can come.
  const [seconds] = await redis.time();
  const old = Object.entries(await redis.hgetall(logKey)).filter(([, v]) => {
    const e = entryOf(v);
    return e.state === 'in' && e.at > 0 && Number(seconds) * 1000 - e.at > ARRIVAL_KEPT_MS;
  }).map(([id]) => id);
  if (old.length > 0) await redis.hdel(logKey, ...old);
  return done;
}

/** The shards' counters, one entry per shard, or undefined when shard 0 is not in Redis. */
export async function readShards(redis: Redis, saleId: string, shards: number): Promise<{ stock: number; available: number; reserved: number; sold: number }[] | undefined> {
  const rows = await Promise.all(shardKeysOf(saleId, shards).map((key) => redis.hmget(saleKeys.sale(key), 'stock', 'available', 'reserved', 'sold')));
  if (rows[0]![0] == null) return undefined;
  return rows.map(([stock, available, reserved, sold]) => ({ stock: Number(stock ?? 0), available: Number(available ?? 0), reserved: Number(reserved ?? 0), sold: Number(sold ?? 0) }));
}

/** After settling a sharded sale: announces sale.sold_out once every shard has sold its stock (lua/sale/announceSoldOut-2.lua). */
export async function announceIfSoldOut(redis: Redis, saleId: string, shards: number): Promise<boolean> {
  const rows = await readShards(redis, saleId, shards);
  if (!rows) return false;
  const sold = rows.reduce((n, r) => n + r.sold, 0);
  const reply = (await runScript(redis, 'announceSoldOut', [saleKeys.sale(saleId), saleKeys.outbox(saleId)], [sold])) as number[];
  return Number(reply[0]) === Outcome.Applied;
}
