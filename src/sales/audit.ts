/** Invariant audit of a sale (Redis live state against Postgres rows), used by tests, the benchmark and operators. */
import type { Pool } from '../platform/db/pool.js';
import type { Redis } from '../platform/redis/client.js';
import { readLiveSale } from './scripts.js';
import { saleKeys } from './keys.js';
import { readShards, shardKeyOf, shardKeysOf, shardOfBuyer, transfersInTransit } from './shards.js';
import { countBuyersOverLimit, countNegativeWallets, countOrders } from './repository.js';

export interface SaleAudit {
  live: { stock: number; available: number; reserved: number; sold: number };
  confirmedOrders: number;
  confirmedUnits: number;
  orders: number;
  purchaseDebits: number;
  negativeWallets: number;
  buyersOverLimit: number;
  violations: string[];
}

export interface LiveSaleAudit {
  live: { stock: number; available: number; reserved: number; sold: number };
  /** Units the buyers hold (reserved + sold), from the per-buyer counts. */
  held: number;
  violations: string[];
}

/**
 * The invariants that hold at every instant, in Redis alone (usable while
 * the sale is live and nothing is settled yet): the counters add up to the
 * stock and none is negative, nothing is sold past the stock, no buyer holds
 * more than the limit, and the buyers' counts add up to what is reserved or sold.
 */
export async function auditLiveSale(redis: Redis, saleId: string, perBuyerLimit: number): Promise<LiveSaleAudit> {
  const state = await readLiveSale(redis, saleId);
  if (!state) return { live: { stock: 0, available: 0, reserved: 0, sold: 0 }, held: 0, violations: ['the sale is not in Redis'] };
  const { status: _status, ...live } = state;
  const shards = Number((await redis.hget(saleKeys.sale(saleId), 'shards')) ?? 1);
  const violations: string[] = shards > 1 ? await auditShards(redis, saleId, shards, perBuyerLimit) : [];
  const boughtBy = await Promise.all(shardKeysOf(saleId, shards).map((key) => redis.hgetall(saleKeys.bought(key))));
  const bought = boughtBy.flatMap((b) => Object.values(b).map(Number));
  const held = bought.reduce((a, q) => a + q, 0);
  if (live.available + live.reserved + live.sold !== live.stock) violations.push(`available ${live.available} + reserved ${live.reserved} + sold ${live.sold} != stock ${live.stock}`);
  if (live.available < 0 || live.reserved < 0 || live.sold < 0) violations.push('a negative counter');
  if (live.sold > live.stock) violations.push('sold more than stock');
  if (bought.some((q) => !Number.isSafeInteger(q) || q > perBuyerLimit || q < 0)) violations.push('a buyer over the limit in Redis');
  if (held !== live.reserved + live.sold) violations.push(`buyers hold ${held} units, the sale counts ${live.reserved} reserved + ${live.sold} sold`);
  return { live, held, violations };
}

/**
 * A sharded sale's invariants across its shards (src/sales/shards.ts): each
 * shard's counters add up to its own stock, the shards' stocks and the units
 * in transit between them add up to the sale's (shard 0's `total`), and each
 * buyer holds units in their own shard only (so the limit is one count).
 */
async function auditShards(redis: Redis, saleId: string, shards: number, perBuyerLimit: number): Promise<string[]> {
  const violations: string[] = [];
  const [rows, transit, total] = await Promise.all([
    readShards(redis, saleId, shards), transfersInTransit(redis, saleId, shards), redis.hget(saleKeys.sale(saleId), 'total'),
  ]);
  for (const [j, r] of (rows ?? []).entries()) {
    if (r.available + r.reserved + r.sold !== r.stock) violations.push(`shard ${j}: available ${r.available} + reserved ${r.reserved} + sold ${r.sold} != stock ${r.stock}`);
    if (r.available < 0 || r.reserved < 0 || r.sold < 0 || r.stock < 0) violations.push(`shard ${j}: a negative counter`);
  }
  const stocks = (rows ?? []).reduce((n, r) => n + r.stock, 0) + transit.reduce((n, t) => n + t.units, 0);
  if (stocks !== Number(total)) violations.push(`the shards' stock ${stocks} (in transit included) != the sale's ${total}`);
  for (let j = 0; j < shards; j++) {
    const buyers = await redis.hkeys(saleKeys.bought(shardKeyOf(saleId, j)));
    const strays = buyers.filter((b) => shardOfBuyer(b, shards) !== j);
    if (strays.length > 0) violations.push(`shard ${j}: ${strays.length} buyers of other shards hold units here`);
  }
  if (perBuyerLimit < 1) violations.push('a per-buyer limit below 1');
  return violations;
}

/** Audits one sale once it is drained: Redis counters against Postgres rows. */
export async function auditSale(pool: Pool, redis: Redis, saleId: string, perBuyerLimit: number): Promise<SaleAudit> {
  const { live, violations } = await auditLiveSale(redis, saleId, perBuyerLimit);
  const orders = await countOrders(pool, saleId);
  const negativeWallets = await countNegativeWallets(pool);
  const buyersOverLimit = await countBuyersOverLimit(pool, saleId, perBuyerLimit);
  if (live.reserved === 0 && live.sold !== orders.confirmedUnits) violations.push(`Redis sold ${live.sold} != Postgres confirmed units ${orders.confirmedUnits}`);
  if (negativeWallets > 0) violations.push(`${negativeWallets} negative wallets`);
  if (buyersOverLimit > 0) violations.push(`${buyersOverLimit} buyers over the limit in Postgres`);
  return { live, ...orders, negativeWallets, buyersOverLimit, violations };
}
