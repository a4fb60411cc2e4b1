/**
 * Typed wrappers of the sale scripts: they build KEYS in the order each
 * script's header lists, and map output codes (ONE table below) to results.
 */
import type { Redis } from 'ioredis';
import { saleKeys, STOCK_CHANNEL } from './keys.js';
import { RELAY_GROUP } from '../platform/messaging/outbox.js';
import { runScript } from '../platform/redis/functions.js';
import { Outcome, type Refusal } from '../platform/redis/outcomes.js';
import type { Purchase } from './events.js';
import type { OrderStatus, SaleRecord } from './repository.js';
import { readShards, transfersInTransit } from './shards.js';

export type ReserveOutcome =
  | { code: Outcome.Applied; purchaseId: string; available: number; private: boolean }
  | { code: Outcome.AlreadyApplied; purchaseId: string }
  | { code: Outcome.SoldOut; available: number; private: boolean }
  | Extract<Refusal, { code: Outcome.LimitReached | Outcome.InProgress | Outcome.RateLimited | Outcome.NotOpenYet | Outcome.Closed }>
  /** `ineligible`: the sale exists, but is private and this buyer is not on its list (answered as unknown all the same). */
  | { code: Outcome.NotFound; ineligible: boolean }
  | { code: Outcome.IdempotencyMismatch; purchaseId: string };

export interface ReserveRequest {
  saleId: string;
  buyerId: string;
  quantity: number;
  purchaseId: string;
  idempotencyKey?: string;
  fingerprint?: string;
  rateMax: number;
  rateWindowMs: number;
  idempotencyTtlMs: number;
}

type Reply = (string | number)[];

/**
 * Decides purchases of one sale, in order, in one call (lua/sale/reservePurchases-n.lua):
 * one settled result per request. A reply that cannot be decoded rejects that request alone.
 */
export async function reservePurchases(redis: Redis, saleId: string, requests: ReserveRequest[]): Promise<PromiseSettledResult<ReserveOutcome>[]> {
  const keys = [saleKeys.sale(saleId), saleKeys.bought(saleId), saleKeys.inflight(saleId), saleKeys.outbox(saleId), saleKeys.eligible(saleId)];
  const args: (string | number)[] = [];
  for (const r of requests) {
    if (r.saleId !== saleId) throw new Error(`reservePurchases: purchase of sale ${r.saleId} in a batch of ${saleId}`);
    keys.push(saleKeys.rate(saleId, r.buyerId), saleKeys.idempotency(saleId, r.buyerId, r.idempotencyKey ?? ''), saleKeys.purchase(saleId, r.purchaseId));
    args.push(r.buyerId, r.quantity, r.purchaseId, r.idempotencyKey ? (r.fingerprint ?? '') : '', r.rateMax, r.rateWindowMs, r.idempotencyTtlMs);
  }
  const replies = (await runScript(redis, 'reservePurchases', keys, args)) as Reply[];
  return requests.map((_, i): PromiseSettledResult<ReserveOutcome> => {
    try {
      return { status: 'fulfilled', value: reserveOutcomeOf(replies[i]) };
    } catch (reason) {
      return { status: 'rejected', reason };
    }
  });
}

/** Decides one purchase (reservePurchases with one). */
export async function reservePurchase(redis: Redis, request: ReserveRequest): Promise<ReserveOutcome> {
  const [result] = await reservePurchases(redis, request.saleId, [request]);
  if (result!.status === 'rejected') throw result!.reason;
  return result!.value;
}

function reserveOutcomeOf(reply: Reply | undefined): ReserveOutcome {
  if (!Array.isArray(reply)) throw new Error(`reservePurchases: unexpected reply ${JSON.stringify(reply)}`);
  const code = Number(reply[0]) as Outcome;
  switch (code) {
    case Outcome.Applied:
      return { code, purchaseId: String(reply[1]), available: Number(reply[2]), private: String(reply[3]) === '1' };
    case Outcome.AlreadyApplied:
    case Outcome.InProgress:
    case Outcome.IdempotencyMismatch:
      return { code, purchaseId: String(reply[1]) };
    case Outcome.SoldOut:
      return { code, available: Number(reply[1]), private: String(reply[2]) === '1' };
    case Outcome.LimitReached:
      return { code, bought: Number(reply[1]), limit: Number(reply[2]) };
    case Outcome.RateLimited:
      return { code, retryAfterMs: Number(reply[1]) };
    case Outcome.NotOpenYet:
      return { code, startsAt: Number(reply[1]) };
    case Outcome.Closed:
      return { code };
    case Outcome.NotFound:
      return { code, ineligible: reply[1] === 'ineligible' };
    default:
      throw new Error(`reservePurchases: unexpected reply ${JSON.stringify(reply)}`);
  }
}

/** A purchase is pending until it is settled; then its status is its order's. */
export type PurchaseStatus = 'pending' | OrderStatus;

export type SettleOutcome = { code: Outcome.Applied | Outcome.AlreadyApplied; status: PurchaseStatus } | { code: Outcome.NotFound };

/** One settled outcome to apply to a purchase's live state. */
export interface Settlement {
  purchaseId: string;
  status: OrderStatus;
  reason: string;
  settledAt: number;
}

/**
 * Most purchases applied by one script call. A script holds Redis whole:
 * while it runs, every purchase and bid waits, so a call applying a whole
 * batch was a latency spike for every buyer of every sale whenever a batch
 * settled during a live sale. Calls of this size stay short, at the small
 * cost of one more script dispatch per call.
 */
export const SETTLE_PER_CALL = 50;

/**
 * Applies the settled outcomes of purchases of one sale, in order, each
 * exactly once (lua/sale/settlePurchases-n.lua), in calls of at most SETTLE_PER_CALL.
 * Returns one outcome per settlement.
 */
export async function settlePurchases(redis: Redis, saleId: string, settlements: readonly Settlement[]): Promise<SettleOutcome[]> {
  const outcomes: SettleOutcome[] = [];
  for (let i = 0; i < settlements.length; i += SETTLE_PER_CALL) {
    const part = settlements.slice(i, i + SETTLE_PER_CALL);
    const keys = [saleKeys.sale(saleId), saleKeys.bought(saleId), saleKeys.inflight(saleId), saleKeys.outbox(saleId)];
    const args: (string | number)[] = [STOCK_CHANNEL];
    for (const settlement of part) {
      keys.push(saleKeys.purchase(saleId, settlement.purchaseId));
      args.push(settlement.status, settlement.reason, settlement.settledAt, settlement.purchaseId);
    }
    const reply = (await runScript(redis, 'settlePurchases', keys, args)) as Reply;
    if (!Array.isArray(reply) || reply.length !== 2 * part.length) throw new Error(`settlePurchases: unexpected reply ${JSON.stringify(reply)}`);
    for (let j = 0; j < reply.length; j += 2) {
      const code = Number(reply[j]);
      if (code === Outcome.NotFound) outcomes.push({ code });
      else if (code === Outcome.Applied || code === Outcome.AlreadyApplied) outcomes.push({ code, status: String(reply[j + 1]) as PurchaseStatus });
      else throw new Error(`settlePurchases: unexpected reply ${JSON.stringify(reply)}`);
    }
  }
  return outcomes;
}

/** Applies one purchase's settled outcome (settlePurchases with one). */
export async function settlePurchase(
  redis: Redis,
  saleId: string,
  purchaseId: string,
  status: Settlement['status'],
  reason: string,
  settledAt: number,
): Promise<SettleOutcome> {
  const [outcome] = await settlePurchases(redis, saleId, [{ purchaseId, status, reason, settledAt }]);
  return outcome!;
}

export type CancelOutcome =
  | { code: Outcome.Applied | Outcome.AlreadyApplied; status: PurchaseStatus }
  | { code: Outcome.NotFound }
  | { code: Outcome.NotCancellable; status: PurchaseStatus };

export async function requestCancel(redis: Redis, saleId: string, purchaseId: string, buyerId: string): Promise<CancelOutcome> {
  const reply = (await runScript(redis, 'requestCancel', [saleKeys.purchase(saleId, purchaseId), saleKeys.outbox(saleId)], [buyerId, purchaseId])) as Reply;
  const code = Number(reply[0]);
  if (code === Outcome.Applied || code === Outcome.AlreadyApplied) return { code, status: String(reply[1]) as PurchaseStatus };
  if (code === Outcome.NotFound) return { code };
  if (code === Outcome.NotCancellable) return { code, status: String(reply[1]) as PurchaseStatus };
  throw new Error(`requestCancel: unexpected reply ${JSON.stringify(reply)}`);
}

export type ExpiryOutcome =
  | { code: Outcome.Applied | Outcome.AlreadyApplied; status: PurchaseStatus }
  | { code: Outcome.NotDue; dueAt: number }
  | { code: Outcome.NotFound };

/** Gives up a purchase still pending `deadlineMs` after its acceptance (Redis TIME): its expiry goes to the outbox (lua/sale/expirePurchase-2.lua). */
export async function expirePurchase(redis: Redis, saleId: string, purchaseId: string, deadlineMs: number): Promise<ExpiryOutcome> {
  const reply = (await runScript(redis, 'expirePurchase', [saleKeys.purchase(saleId, purchaseId), saleKeys.outbox(saleId)], [purchaseId, String(deadlineMs)])) as Reply;
  const code = Number(reply[0]);
  if (code === Outcome.Applied || code === Outcome.AlreadyApplied) return { code, status: String(reply[1]) as PurchaseStatus };
  if (code === Outcome.NotDue) return { code, dueAt: Number(reply[1]) };
  if (code === Outcome.NotFound) return { code };
  throw new Error(`expirePurchase: unexpected reply ${JSON.stringify(reply)}`);
}

/** What the scripts decide a sale's purchases by (times in ms). */
export type SaleTerms = Pick<SaleRecord, 'id' | 'status' | 'startsAt' | 'endsAt' | 'perBuyerLimit' | 'unitPrice' | 'currency' | 'stock'> & { private?: boolean };

/** Where a sale (or one shard of a sharded sale, src/sales/shards.ts) is loaded: its keys' id, how many shards, the sale's whole stock (shard 0 of a sharded sale). */
export interface LoadShard {
  key: string;
  shards: number;
  total?: number;
}

/**
 * Loads (or refreshes the terms of) a sale in Redis: `sale.stock` and
 * `alreadySold` are the stock and settled units of the shard loaded (the
 * whole sale's when it has one). Returns true when it was created.
 */
export async function loadSale(redis: Redis, sale: SaleTerms, alreadySold: number, at: LoadShard = { key: sale.id, shards: 1 }): Promise<boolean> {
  const reply = (await runScript(
    redis,
    'loadSale',
    [saleKeys.sale(at.key), saleKeys.outbox(at.key)],
    [sale.id, sale.status, sale.startsAt, sale.endsAt, sale.perBuyerLimit, sale.unitPrice, sale.currency, sale.stock, alreadySold, RELAY_GROUP, sale.private ? '1' : '0',
      at.shards, at.total ?? ''],
  )) as Reply;
  return Number(reply[0]) === Outcome.Applied;
}

/** Replaces a private sale's eligible buyers in Redis (lua/sale/setEligibleBuyers-2.lua); false when Redis does not hold the sale. */
export async function setEligibleBuyers(redis: Redis, saleId: string, buyerIds: readonly string[]): Promise<boolean> {
  const reply = (await runScript(redis, 'setEligibleBuyers', [saleKeys.sale(saleId), saleKeys.eligible(saleId)], [...buyerIds])) as Reply;
  const code = Number(reply[0]);
  if (code === Outcome.Applied) return true;
  if (code === Outcome.NotFound) return false;
  throw new Error(`setEligibleBuyers: unexpected reply ${JSON.stringify(reply)}`);
}

export async function addStock(redis: Redis, saleId: string, units: number): Promise<{ available: number; stock: number } | undefined> {
  const reply = (await runScript(redis, 'addStock', [saleKeys.sale(saleId)], [units, STOCK_CHANNEL])) as Reply;
  if (Number(reply[0]) !== Outcome.Applied) return undefined;
  return { available: Number(reply[1]), stock: Number(reply[2]) };
}

export interface LiveSale {
  status: string;
  stock: number;
  available: number;
  reserved: number;
  sold: number;
}

/** A sale's live counters: a sharded sale's summed over its shards, its units in transit between shards counted in its stock. */
export async function readLiveSale(redis: Redis, saleId: string): Promise<LiveSale | undefined> {
  const [status, stock, available, reserved, sold, shards] = await redis.hmget(saleKeys.sale(saleId), 'status', 'stock', 'available', 'reserved', 'sold', 'shards');
  if (status == null) return undefined;
  const live = { status, stock: Number(stock), available: Number(available), reserved: Number(reserved), sold: Number(sold) };
  const k = Number(shards ?? 1);
  if (k <= 1) return live;
  const [rows, transit] = await Promise.all([readShards(redis, saleId, k), transfersInTransit(redis, saleId, k)]);
  for (const r of rows!.slice(1)) {
    live.stock += r.stock;
    live.available += r.available;
    live.reserved += r.reserved;
    live.sold += r.sold;
  }
  // Units between two shards are neither available nor held: they are in the stock (and arrive as available).
  const moving = transit.reduce((n, t) => n + t.units, 0);
  live.stock += moving;
  live.available += moving;
  return live;
}

/** A purchase's live record in Redis. */
export interface PurchaseRecord extends Purchase {
  status: PurchaseStatus;
  reason: string;
  cancelRequested: boolean;
  createdAt: number;
}

export async function readPurchase(redis: Redis, saleId: string, purchaseId: string): Promise<PurchaseRecord | undefined> {
  const fields = await redis.hgetall(saleKeys.purchase(saleId, purchaseId));
  if (!fields.status) return undefined;
  return {
    purchaseId,
    // `saleId` names the shard's keys for a sharded sale's purchase; the record names the sale.
    saleId: fields.sale ?? saleId,
    buyerId: fields.buyer!,
    quantity: Number(fields.quantity),
    unitPrice: Number(fields.price),
    currency: fields.currency!,
    status: fields.status as PurchaseStatus,
    reason: fields.reason ?? '',
    cancelRequested: fields.cancelRequested === '1',
    createdAt: Number(fields.createdAt),
  };
}
