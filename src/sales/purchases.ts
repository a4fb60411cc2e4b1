/**
 * The purchase path. One Lua call decides everything (see
 * lua/sale/reservePurchases-n.lua): the purchases this process receives for
 * one sale in one event-loop turn go as one call, each decided as if alone
 * (src/platform/redis/turn-batches.ts); this module maps each outcome to
 * its answer.
 * A sale this node knows to be sold out is refused from memory, without
 * touching Redis, until pub/sub says stock came back (or, at the latest,
 * the sold-out cache lifetime passes).
 */
import type { Redis } from 'ioredis';
import { AppError, SOLD_OUT } from '../platform/errors.js';
import { newPurchaseId } from '../platform/ids.js';
import { saleKeys } from './keys.js';
import { liveKeyOfPurchase, refill, shardKeyOf, shardOfBuyer, transfersInTransit } from './shards.js';
import { Outcome, refusalOf } from '../platform/redis/outcomes.js';
import { readPurchase, requestCancel, reservePurchases, type PurchaseRecord, type PurchaseStatus, type ReserveOutcome, type ReserveRequest } from './scripts.js';
import { TurnBatches } from '../platform/redis/turn-batches.js';
import type { Sales } from './sales.js';
import type { OrderRecord } from './repository.js';
import type { OutcomeTally } from '../platform/redis/tally.js';

export interface PurchaseLimits {
  rateMax: number;
  rateWindowMs: number;
  idempotencyTtlMs: number;
  soldOutCacheMs: number;
}

export interface Accepted {
  purchaseId: string;
  status: 'pending';
  statusUrl: string;
  replayed: boolean;
}

export interface PurchaseView {
  purchaseId: string;
  saleId: string;
  quantity: number;
  unitPrice: number;
  amount: number;
  currency: string;
  status: PurchaseStatus;
  reason?: string;
  cancelRequested: boolean;
  createdAt: string;
}

/** Most sales whose shard count a node keeps in memory (a bound on a map that only grows). */
const MAX_CACHED_SALES = 100_000;

/** Sales this node saw sold out, and when. */
export class SoldOutCache {
  private readonly soldOutAt = new Map<string, number>();
  constructor(private readonly ttlMs: number) {}
  isSoldOut(saleId: string): boolean {
    const at = this.soldOutAt.get(saleId);
    if (at === undefined) return false;
    if (Date.now() - at < this.ttlMs) return true;
    this.soldOutAt.delete(saleId);
    return false;
  }
  markSoldOut(saleId: string): void {
    if (this.ttlMs > 0) this.soldOutAt.set(saleId, Date.now());
  }
  stockBack(saleId: string): void {
    this.soldOutAt.delete(saleId);
  }
  clear(): void {
    this.soldOutAt.clear();
  }
}

/**
 * The most purchases one reservePurchases call decides: a call holds Redis
 * for every purchase in it, so a larger batch delays every other caller.
 */
export const MAX_PURCHASES_PER_CALL = 32;

const purchasesInTurn = new TurnBatches<ReserveRequest, ReserveOutcome>(MAX_PURCHASES_PER_CALL, reservePurchases);

/** Decides one purchase with the others of this sale in this event-loop turn. */
const reserve = (redis: Redis, request: ReserveRequest): Promise<ReserveOutcome> => purchasesInTurn.add(redis, request.saleId, request);

export class Purchases {
  readonly soldOut: SoldOutCache;

  constructor(
    private readonly redis: Redis,
    private readonly sales: Sales,
    private readonly limits: PurchaseLimits,
    /** The settled record, read when Redis no longer has the purchase. */
    private readonly findOrder: (purchaseId: string) => Promise<OrderRecord | undefined> = async () => undefined,
    /** Counts each decision by sale and outcome code, for the operators' live view. */
    private readonly tally?: OutcomeTally,
  ) {
    this.soldOut = new SoldOutCache(limits.soldOutCacheMs);
  }

  /**
   * SOLD_OUT when this node already knows the sale is sold out (no Redis call), counted as a decision.
   * Never for a request with an Idempotency-Key: it may be the retry of the very purchase that sold
   * the sale out, and only Redis knows (it answers the replay, or the sold-out).
   */
  refusedFromMemory(saleId: string, idempotencyKey: string | undefined): AppError | undefined {
    if (idempotencyKey !== undefined || !this.soldOut.isSoldOut(saleId)) return undefined;
    this.tally?.count(saleId, Outcome.SoldOut);
    return SOLD_OUT;
  }

  /** Adds the decisions counted so far to Redis now (tests; the tally flushes on its own). */
  flushTally(): Promise<void> {
    return this.tally?.flush() ?? Promise.resolve();
  }

  /** How many shards each sale this node decided for is split across (fixed at creation, so cached for good). */
  private readonly shardCounts = new Map<string, number>();

  /** The sale's shard count, read from its hash in Redis the first time (1 when Redis does not hold it yet). */
  private async shardsOf(saleId: string): Promise<number> {
    const known = this.shardCounts.get(saleId);
    if (known !== undefined) return known;
    const stored = await this.redis.hget(saleKeys.sale(saleId), 'shards');
    if (stored == null) return 1;
    const shards = Math.max(1, Number(stored) || 1);
    if (this.shardCounts.size >= MAX_CACHED_SALES) this.shardCounts.clear();
    this.shardCounts.set(saleId, shards);
    return shards;
  }

  async purchase(buyerId: string, saleId: string, quantity: number, idempotencyKey: string | undefined): Promise<Accepted> {
    const known = this.refusedFromMemory(saleId, idempotencyKey);
    if (known) throw known;
    let shards = this.shardCounts.get(saleId) ?? (await this.shardsOf(saleId));
    const requestIn = (k: number): ReserveRequest => {
      const shard = shardOfBuyer(buyerId, k);
      return {
        saleId: shardKeyOf(saleId, shard), buyerId, quantity, purchaseId: newPurchaseId(saleId, shard),
        idempotencyKey, fingerprint: `q=${quantity}`,
        rateMax: this.limits.rateMax, rateWindowMs: this.limits.rateWindowMs, idempotencyTtlMs: this.limits.idempotencyTtlMs,
      };
    };
    let request = requestIn(shards);
    let out = await reserve(this.redis, request);
    if (out.code === Outcome.NotFound && !out.ineligible && (await this.sales.ensureLoaded(saleId, undefined, request.saleId))) {
      shards = await this.shardsOf(saleId);
      request = requestIn(shards);
      out = await reserve(this.redis, request);
    }
    // A sharded sale's shard ran dry: stock moves to it from another shard, and the purchase is decided again, once
    // (also when this refill found the donors emptied by concurrent refills: those moved their units here).
    if (out.code === Outcome.SoldOut && shards > 1) {
      await refill(this.redis, saleId, shards, shardOfBuyer(buyerId, shards), quantity);
      out = await reserve(this.redis, request);
    }
    this.tally?.count(saleId, out.code);
    if (out.code === Outcome.Applied) {
      // A private sale is never refused from memory: that would tell a buyer not on its list that it exists.
      // A shard left empty is not the sale sold out: the next buyer of that shard refills it.
      if (out.available === 0 && !out.private && shards === 1) this.soldOut.markSoldOut(saleId);
      return this.accepted(out.purchaseId, false);
    }
    if (out.code === Outcome.AlreadyApplied) return this.accepted(out.purchaseId, true);
    // Sharded: refill found no other shard with stock either, so every shard is empty, and nothing is on its way between two.
    if (out.code === Outcome.SoldOut && out.available === 0 && !out.private && (shards === 1 || (await transfersInTransit(this.redis, saleId, shards)).length === 0)) {
      this.soldOut.markSoldOut(saleId);
    }
    throw refusalOf('sale', out);
  }

  async get(buyerId: string, purchaseId: string): Promise<PurchaseView> {
    const saleId = liveKeyOfPurchase(purchaseId);
    const live = saleId ? await readPurchase(this.redis, saleId, purchaseId) : undefined;
    if (live) {
      if (live.buyerId !== buyerId) throw new AppError('NOT_FOUND', 'no such purchase');
      return viewOf(live);
    }
    // Redis lost it (a flush, a failover): Postgres still has every settled purchase.
    const order = saleId ? await this.findOrder(purchaseId) : undefined;
    if (!order || order.buyerId !== buyerId) throw new AppError('NOT_FOUND', 'no such purchase');
    return viewOf({ ...order, createdAt: order.acceptedAt, cancelRequested: order.status === 'cancelled' });
  }

  async cancel(buyerId: string, purchaseId: string): Promise<PurchaseView> {
    const saleId = liveKeyOfPurchase(purchaseId);
    if (!saleId) throw new AppError('NOT_FOUND', 'no such purchase');
    const out = await requestCancel(this.redis, saleId, purchaseId, buyerId);
    if (out.code === Outcome.NotFound || out.code === Outcome.NotCancellable) throw refusalOf('purchase', out);
    return viewOf(await this.own(buyerId, purchaseId));
  }

  private async own(buyerId: string, purchaseId: string): Promise<PurchaseRecord> {
    const saleId = liveKeyOfPurchase(purchaseId);
    const record = saleId ? await readPurchase(this.redis, saleId, purchaseId) : undefined;
    // Another buyer's purchase is answered exactly like a missing one.
    if (!record || record.buyerId !== buyerId) throw new AppError('NOT_FOUND', 'no such purchase');
    return record;
  }

  private accepted(purchaseId: string, replayed: boolean): Accepted {
    return { purchaseId, status: 'pending', statusUrl: `/v1/purchases/${purchaseId}`, replayed };
  }
}

function viewOf(purchase: PurchaseRecord): PurchaseView {
  return {
    purchaseId: purchase.purchaseId, saleId: purchase.saleId, quantity: purchase.quantity, unitPrice: purchase.unitPrice,
    amount: purchase.quantity * purchase.unitPrice, currency: purchase.currency, status: purchase.status,
    ...(purchase.reason ? { reason: purchase.reason } : {}),
    cancelRequested: purchase.cancelRequested, createdAt: new Date(purchase.createdAt).toISOString(),
  };
}
