/**
 * Sales: terms live in Postgres (the record), the live state in Redis (the
 * decision point). Creating, adding stock or closing writes both; a sale
 * missing from Redis (a flushed or replaced Redis) is loaded again from
 * Postgres on first use, with its settled quantities.
 *
 * A bundle sale sells several items as one unit: its price is computed once
 * here (bundles.ts) and is the sale's unitPrice from then on. A private sale
 * is bought and seen only by the buyers on its list: the purchase script
 * refuses the others itself (the list is in Redis beside the sale), and its
 * view is absent (404) to anyone but them, its seller and operators.
 */
import { ensureLive, type Redis } from '../platform/redis/client.js';
import { AppError } from '../platform/errors.js';
import { newSaleId } from '../platform/ids.js';
import { inTransaction, type Pool, type PoolClient } from '../platform/db/pool.js';
import { OUTBOX_REGISTRY } from '../platform/messaging/outbox.js';
import { saleKeys } from './keys.js';
import { addStock as addStockScript, loadSale, readLiveSale, setEligibleBuyers, type LiveSale } from './scripts.js';
import {
  addToStock, closeSale, confirmedUnitsByBuyer, eligibleBuyersOf, eligibleOpenSales, findSale, insertSale, isEligible, lockSale, notBuyers, openSales,
  recentOpenSales, replaceEligibleBuyers, type BundleItem, type BundlePrice, type SaleOffer, type SaleRecord,
} from './repository.js';
import { priceBundle, type DiscountInput } from './bundles.js';
import { MAX_SHARDS, shardKeyOf, shardKeysOf, shardOfBuyer, splitStock, transfersInTransit } from './shards.js';
import type { Principal } from '../platform/auth/api-keys.js';
import { isRealDateTime } from '../platform/time.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import { EVENTS } from '../events/catalogue.js';

/** Most units one sale may hold. */
export const MAX_STOCK = 10_000_000;

/**
 * A sale as a seller or operator asks for it (times are ISO 8601 date-times):
 * one item at `unitPrice`, or a bundle of `items` (with an optional
 * `discount`) whose price is computed; `eligibleBuyers` makes it private.
 */
export interface NewSale extends Omit<SaleOffer, 'unitPrice'> {
  unitPrice?: number;
  items?: BundleItem[];
  discount?: DiscountInput;
  eligibleBuyers?: string[];
  /** Its stock split across this many Redis slots (src/sales/shards.ts); 1 when absent. */
  shards?: number;
  startsAt: string;
  endsAt: string;
}

export interface SaleView extends SaleOffer {
  id: string;
  sellerId: string | null;
  startsAt: string;
  endsAt: string;
  status: 'scheduled' | 'open' | 'ended' | 'closed';
  /** Only its eligible buyers may see and buy it. */
  private: boolean;
  /** A bundle's breakdown (unitPrice is its `price`); null for a single item. */
  bundle: BundlePrice | null;
  shards: number;
  live: Omit<LiveSale, 'status'> | null;
}

/** Who asks to see a sale: a buyer (bearer token), an operator or seller (API key), or nobody known. */
export type Viewer = { buyerId: string } | { principal: Principal } | null;

function viewOf(sale: SaleRecord, live: LiveSale | undefined): SaleView {
  const now = Date.now();
  const status = sale.status === 'closed' ? 'closed' : now < sale.startsAt ? 'scheduled' : now >= sale.endsAt ? 'ended' : 'open';
  return {
    id: sale.id, sellerId: sale.sellerId, name: sale.name, sku: sale.sku, unitPrice: sale.unitPrice, currency: sale.currency,
    stock: sale.stock, perBuyerLimit: sale.perBuyerLimit, startsAt: new Date(sale.startsAt).toISOString(), endsAt: new Date(sale.endsAt).toISOString(),
    status, private: sale.private, bundle: sale.bundle, shards: sale.shards,
    live: live ? { stock: live.stock, available: live.available, reserved: live.reserved, sold: live.sold } : null,
  };
}

/** The first index of a value seen before, or -1. */
function firstRepeat(ids: readonly string[]): number {
  const seen = new Set<string>();
  for (let i = 0; i < ids.length; i++) {
    if (seen.has(ids[i]!)) return i;
    seen.add(ids[i]!);
  }
  return -1;
}

/**
 * Who tells the world of a sale's changes (sale.created, sale.updated,
 * sale.closed on the topic exchange, for sellers' webhooks): `record` writes
 * them inside the change's own transaction (the api: the Postgres event
 * outbox, src/platform/messaging/pg-outbox.ts), so a change is never
 * committed without them; `committed` is told once it committed (the api
 * relays them then, with publisher confirms).
 */
export interface SaleAnnouncer {
  record(tx: PoolClient, events: CloudEvent[]): Promise<void>;
  committed(): void;
}

/** The announcement of a sale's terms: its id names the sale and what changed, so announcing it again is the same event. */
export function saleAnnouncementOf(kind: 'created' | 'updated' | 'closed', sale: SaleRecord, at = Date.now()): CloudEvent {
  const terms = {
    saleId: sale.id, sellerId: sale.sellerId ?? '', name: sale.name, sku: sale.sku, unitPrice: sale.unitPrice, currency: sale.currency, stock: sale.stock,
    perBuyerLimit: sale.perBuyerLimit, startsAt: sale.startsAt, endsAt: sale.endsAt,
  };
  const [type, id, data] = kind === 'created' ? [EVENTS.saleCreated.type, `${sale.id}:created`, terms]
    : kind === 'updated' ? [EVENTS.saleUpdated.type, `${sale.id}:stock:${sale.stock}`, { ...terms, updatedAt: at }]
      : [EVENTS.saleClosed.type, `${sale.id}:closed`, { saleId: sale.id, closedAt: at }];
  return { specversion: '1.0', id, source: 'stampede:sales', type, time: new Date(at).toISOString(), subject: sale.id, datacontenttype: 'application/json', data };
}

/** Who tells a new sale's watchers before it opens (src/notifications/sends.ts). */
export interface OpeningNotices {
  scheduleSaleOpening(saleId: string, startsAt: number): Promise<void>;
}

export class Sales {
  constructor(
    private readonly pool: Pool,
    private readonly redis: Redis,
    private readonly openingNotices?: OpeningNotices,
    private readonly announce?: SaleAnnouncer,
  ) {}

  async create(input: NewSale, by: Principal): Promise<SaleView> {
    for (const field of ['startsAt', 'endsAt'] as const) {
      if (!isRealDateTime(input[field])) throw AppError.invalid(`/${field}`, 'is not a real date-time', `${field} is not a real date-time`);
    }
    const startsAt = new Date(input.startsAt);
    const endsAt = new Date(input.endsAt);
    if (!(endsAt.getTime() > startsAt.getTime())) throw AppError.invalid('/endsAt', 'must be after startsAt', 'endsAt must be after startsAt');
    let bundle: BundlePrice | null = null;
    if (input.items !== undefined) {
      if (input.unitPrice !== undefined) throw AppError.invalid('/unitPrice', 'must be absent for a bundle', "a bundle's price is computed from its items");
      bundle = priceBundle(input.items, input.discount);
    } else {
      if (input.discount !== undefined) throw AppError.invalid('/discount', 'is only for a bundle', 'a discount needs items (a bundle)');
      if (input.unitPrice === undefined) throw AppError.invalid('/unitPrice', 'is required', 'unitPrice is required (or items, for a bundle)');
    }
    const eligible = input.eligibleBuyers;
    if (eligible) this.noRepeats(eligible, '/eligibleBuyers');
    const shards = input.shards ?? 1;
    if (!Number.isSafeInteger(shards) || shards < 1 || shards > MAX_SHARDS) throw AppError.invalid('/shards', `must be an integer from 1 to ${MAX_SHARDS}`, `shards must be an integer from 1 to ${MAX_SHARDS}`);
    if (shards > 1 && eligible) throw AppError.invalid('/shards', 'must be 1 for a private sale', 'a private sale is not split across shards (its list of buyers lives in one slot)');
    const sale = await inTransaction(this.pool, async (tx) => {
      if (eligible) await this.allBuyers(tx, eligible, '/eligibleBuyers');
      const inserted = await insertSale(tx, {
        id: newSaleId(), sellerId: by.role === 'seller' ? by.userId : null, name: input.name, sku: input.sku, unitPrice: bundle?.price ?? input.unitPrice!,
        currency: input.currency, stock: input.stock, perBuyerLimit: input.perBuyerLimit, startsAt: startsAt.getTime(), endsAt: endsAt.getTime(),
        bundle, private: eligible !== undefined, shards,
      });
      if (eligible) await replaceEligibleBuyers(tx, inserted.id, eligible);
      await this.announce?.record(tx, [saleAnnouncementOf('created', inserted)]);
      return inserted;
    });
    this.announce?.committed();
    await this.load(sale);
    await this.openingNotices?.scheduleSaleOpening(sale.id, sale.startsAt);
    return viewOf(sale, await readLiveSale(this.redis, sale.id));
  }

  /**
   * The sale. A private one only to its eligible buyers, its seller and
   * operators: `viewer` is asked only then, and credentials that do not
   * verify count as nobody's, so the answer never tells that it exists.
   */
  async get(saleId: string, viewer?: () => Promise<Viewer>): Promise<SaleView> {
    const sale = await findSale(this.pool, saleId);
    if (!sale || (sale.private && !(await this.maySee(sale, viewer)))) throw new AppError('NOT_FOUND', 'no such sale');
    return viewOf(sale, await readLiveSale(this.redis, saleId));
  }

  /** The open private sales the buyer may buy, by id, keyset-paginated. */
  async listEligible(buyerId: string, limit: number, after: string | undefined): Promise<{ items: SaleView[]; next: string | null }> {
    const sales = await eligibleOpenSales(this.pool, buyerId, { max: limit + 1, after });
    const page = sales.slice(0, limit);
    const lives = await Promise.all(page.map((sale) => readLiveSale(this.redis, sale.id)));
    return { items: page.map((sale, i) => viewOf(sale, lives[i])), next: sales.length > limit ? page[page.length - 1]!.id : null };
  }

  /** A private sale's eligible buyers, in id order (its seller, or an operator). */
  async eligibleBuyers(saleId: string, by: Principal): Promise<{ saleId: string; buyerIds: string[] }> {
    const sale = this.authorized(await findSale(this.pool, saleId), by);
    if (!sale.private) throw new AppError('CONFLICT', 'this sale is public: only a private sale has eligible buyers');
    return { saleId, buyerIds: await eligibleBuyersOf(this.pool, saleId) };
  }

  /**
   * Replaces a private sale's eligible buyers, in Postgres and, inside the
   * same transaction, in Redis (atomically there: the next purchase decided
   * sees the new list whole). A purchase already accepted stays accepted.
   */
  async setEligibleBuyers(saleId: string, buyerIds: string[], by: Principal): Promise<{ saleId: string; buyerIds: string[] }> {
    return inTransaction(this.pool, async (tx) => {
      const sale = this.authorized(await lockSale(tx, saleId), by);
      if (!sale.private) throw new AppError('CONFLICT', 'this sale is public: only a private sale has eligible buyers');
      this.noRepeats(buyerIds, '/buyerIds');
      await this.allBuyers(tx, buyerIds, '/buyerIds');
      await replaceEligibleBuyers(tx, saleId, buyerIds);
      await this.ensureLoaded(saleId, sale);
      // Redis is updated inside the transaction: if it fails, Postgres rolls back too.
      if (!(await setEligibleBuyers(this.redis, saleId, buyerIds))) throw new Error(`sale ${saleId} is not in Redis`);
      return { saleId, buyerIds: [...buyerIds].sort() };
    });
  }

  private async maySee(sale: SaleRecord, viewer: (() => Promise<Viewer>) | undefined): Promise<boolean> {
    let who: Viewer = null;
    try {
      who = viewer ? await viewer() : null;
    } catch (err) {
      if (!(err instanceof AppError) || (err.code !== 'UNAUTHORIZED' && err.code !== 'FORBIDDEN')) throw err;
    }
    if (who === null) return false;
    if ('principal' in who) return who.principal.role === 'operator' || who.principal.userId === sale.sellerId;
    return isEligible(this.pool, sale.id, who.buyerId);
  }

  private noRepeats(ids: readonly string[], path: string): void {
    const i = firstRepeat(ids);
    if (i >= 0) throw AppError.invalid(`${path}/${i}`, 'is listed twice', `${ids[i]} is listed twice`);
  }

  private async allBuyers(db: Pick<Pool, 'query'>, ids: readonly string[], path: string): Promise<void> {
    if (ids.length === 0) return;
    const strangers = await notBuyers(db, ids);
    const i = ids.findIndex((id) => strangers.has(id));
    if (i >= 0) throw AppError.invalid(`${path}/${i}`, 'is not a buyer', `${ids[i]} is not a buyer`);
  }

  async listActive(limit: number, after: string | undefined): Promise<{ items: SaleView[]; next: string | null }> {
    // One more than the page: whether it exists says whether there is a next page.
    const sales = await openSales(this.pool, { max: limit + 1, after });
    const page = sales.slice(0, limit);
    const lives = await Promise.all(page.map((sale) => readLiveSale(this.redis, sale.id)));
    return { items: page.map((sale, i) => viewOf(sale, lives[i])), next: sales.length > limit ? page[page.length - 1]!.id : null };
  }

  /** The `limit` open sales that started last, with their live counters. */
  async recentOpen(limit: number): Promise<SaleView[]> {
    const sales = await recentOpenSales(this.pool, limit);
    const lives = await Promise.all(sales.map((sale) => readLiveSale(this.redis, sale.id)));
    return sales.map((sale, i) => viewOf(sale, lives[i]));
  }

  async addStock(saleId: string, units: number, by: Principal): Promise<SaleView> {
    const view = await inTransaction(this.pool, async (tx) => {
      const sale = this.authorized(await lockSale(tx, saleId), by);
      if (sale.status === 'closed') throw new AppError('SALE_ENDED', 'the sale is closed');
      if (sale.stock + units > MAX_STOCK) throw AppError.invalid('/units', 'too large', `stock would exceed ${MAX_STOCK.toLocaleString('en')}`);
      await this.ensureLoaded(saleId, sale);
      await addToStock(tx, saleId, units);
      // Redis is updated inside the transaction: if it fails, Postgres rolls back too.
      await addStockScript(this.redis, saleId, units);
      const now = { ...sale, stock: sale.stock + units };
      await this.announce?.record(tx, [saleAnnouncementOf('updated', now)]);
      return viewOf(now, await readLiveSale(this.redis, saleId));
    });
    this.announce?.committed();
    return view;
  }

  async close(saleId: string, by: Principal): Promise<SaleView> {
    this.authorized(await findSale(this.pool, saleId), by);
    const closed = await inTransaction(this.pool, async (tx) => {
      const closed = (await closeSale(tx, saleId))!;
      await this.announce?.record(tx, [saleAnnouncementOf('closed', closed)]);
      return closed;
    });
    this.announce?.committed();
    await this.load(closed);
    return viewOf(closed, await readLiveSale(this.redis, saleId));
  }

  /**
   * Loads a sale into Redis if Redis does not know it (or, given `shardKey`,
   * that shard of a sharded sale: one shard lost with its cluster node while
   * the others live). Returns false when the sale does not exist.
   */
  ensureLoaded(saleId: string, known?: SaleRecord, shardKey = saleId): Promise<boolean> {
    return ensureLive(this.redis, saleKeys.sale(shardKey), async () => known ?? findSale(this.pool, saleId), (sale) => this.load(sale));
  }

  /** Loads every sale that can still sell (api start-up). */
  async loadActive(): Promise<number> {
    const sales = await openSales(this.pool);
    for (const sale of sales) await this.load(sale);
    return sales.length;
  }

  /**
   * Loads the sale into Redis with what its buyers hold in confirmed orders, and registers its outbox:
   * a sharded sale shard by shard, each with its buyers' holdings (a buyer decides in one shard) and
   * its part of the unsold stock.
   */
  private async load(sale: SaleRecord): Promise<void> {
    const held = await confirmedUnitsByBuyer(this.pool, sale.id);
    const byShard = shardKeysOf(sale.id, sale.shards).map(() => [] as typeof held);
    for (const buyer of held) byShard[shardOfBuyer(buyer.buyerId, sale.shards)]!.push(buyer);
    const soldOf = (list: typeof held) => list.reduce((n, buyer) => n + buyer.quantity, 0);
    const unsold = sale.shards === 1 ? [] : await this.unsoldOfMissingShards(sale, byShard.map(soldOf));
    for (const [j, list] of byShard.entries()) {
      const key = shardKeyOf(sale.id, j);
      const sold = soldOf(list);
      const terms = sale.shards === 1 ? sale : { ...sale, stock: sold + (unsold[j] ?? 0) };
      const created = await loadSale(this.redis, terms, sold, { key, shards: sale.shards, ...(sale.shards > 1 && j === 0 ? { total: sale.stock } : {}) });
      if (created && list.length > 0) await this.redis.hset(saleKeys.bought(key), Object.fromEntries(list.map((buyer) => [buyer.buyerId, buyer.quantity])));
      // Until its list is in Redis a private sale sells to nobody (the script reads `private` from the sale's hash).
      if (created && sale.private) await setEligibleBuyers(this.redis, sale.id, await eligibleBuyersOf(this.pool, sale.id));
      await this.redis.sadd(OUTBOX_REGISTRY, saleKeys.outbox(key));
    }
  }

  /**
   * The unsold units each shard Redis lacks starts with: the sale's stock
   * less what the shards Redis holds have (their stock, in transit
   * included) and less what the missing shards' buyers hold in confirmed
   * orders, split evenly across the missing shards (all of them after a
   * flush). Shards Redis holds get no entry (their counters are kept).
   */
  private async unsoldOfMissingShards(sale: SaleRecord, soldByShard: number[]): Promise<(number | undefined)[]> {
    const keys = shardKeysOf(sale.id, sale.shards);
    const stocks = await Promise.all(keys.map((key) => this.redis.hget(saleKeys.sale(key), 'stock')));
    const missing = keys.map((_, j) => j).filter((j) => stocks[j] == null);
    if (missing.length === 0) return [];
    const transit = (await transfersInTransit(this.redis, sale.id, sale.shards)).reduce((n, t) => n + t.units, 0);
    const kept = stocks.reduce((n, v) => n + Number(v ?? 0), 0) + transit;
    const soldMissing = missing.reduce((n, j) => n + soldByShard[j]!, 0);
    const parts = splitStock(Math.max(0, sale.stock - kept - soldMissing), missing.length);
    const out: (number | undefined)[] = [];
    missing.forEach((j, k) => (out[j] = parts[k]));
    return out;
  }

  private authorized(sale: SaleRecord | undefined, by: Principal): SaleRecord {
    // A seller sees another seller's sale as absent, not as forbidden.
    if (!sale || (by.role === 'seller' && sale.sellerId !== by.userId)) throw new AppError('NOT_FOUND', 'no such sale');
    return sale;
  }
}
