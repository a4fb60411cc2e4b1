/**
 * Auctions: terms in Postgres (the record), live state in Redis (the decision
 * point, see lua/auction), history in the auction_events log. This module
 * creates, reads and cancels auctions and maps the bid scripts' outcomes to
 * answers. An auction missing from Redis is loaded again from Postgres on
 * first use; one whose bids Redis lost is rebuilt from the log
 * (`stampede rebuild auction <id>`).
 */
import { Outcome, refusalOf } from '../platform/redis/outcomes.js';
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../platform/errors.js';
import { newAuctionId, newBidId } from '../platform/ids.js';
import type { Pool } from '../platform/db/pool.js';
import type { Principal } from '../platform/auth/api-keys.js';
import { isRealDateTime } from '../platform/time.js';
import { AUCTION_DEADLINES, AUCTION_PROMOTIONS, auctionKeys } from './keys.js';
import { OUTBOX_REGISTRY } from '../platform/messaging/outbox.js';
import {
  closeAuction, loadAuction, parseStoredBid, placeBid, readLiveAuction, retractBid,
  type AuctionTerms, type BidOutcome, type LiveAuction, type StoredBid,
} from './scripts.js';

/** Largest auction amount in minor units: doubling and percentages stay exact in Lua's doubles. */
export const MAX_AUCTION_AMOUNT = 100_000_000_000;
export const MAX_SOFT_CLOSE_SECONDS = 3_600;
export const MAX_TIERS = 20;

export type IncrementRule =
  | { type: 'absolute'; amount: number }
  | { type: 'percentage'; basisPoints: number }
  | { type: 'tiered'; tiers: { from: number; increment: number }[] };

export type PromoterPolicyName = 'uniform' | 'recency';

export interface PromoterSettings {
  enabled: boolean;
  minIntervalSeconds: number;
  maxIntervalSeconds: number;
  policy: PromoterPolicyName;
}

export interface NewAuction {
  title: string;
  collection?: string;
  currency: string;
  startPrice: number;
  reservePrice?: number;
  buyNowPrice?: number;
  startsAt: string;
  endsAt: string;
  hardCloseAt?: string;
  softCloseSeconds: number;
  increment: IncrementRule;
  promoter?: PromoterSettings;
}

interface AuctionRow {
  id: string;
  seller_id: string | null;
  title: string;
  collection: string | null;
  currency: string;
  start_price: string;
  reserve_price: string;
  buy_now_price: string | null;
  increment_rule: IncrementRule;
  soft_close_ms: number;
  starts_at: Date;
  ends_at: Date;
  hard_close_at: Date;
  promoter: PromoterSettings | null;
  handle_salt: string;
  status: 'open' | 'closed' | 'cancelled';
  closed_at: Date | null;
  outcome: 'sold' | 'unsold' | null;
  winner_id: string | null;
  final_price: string | null;
}

const COLUMNS = `id, seller_id, title, collection, currency, start_price, reserve_price, buy_now_price, increment_rule,
  soft_close_ms, starts_at, ends_at, hard_close_at, promoter, handle_salt, status, closed_at, outcome, winner_id, final_price`;

export interface AuctionView {
  id: string;
  sellerId: string | null;
  title: string;
  collection: string | null;
  currency: string;
  startPrice: number;
  buyNowPrice: number | null;
  increment: IncrementRule;
  softCloseSeconds: number;
  startsAt: string;
  endsAt: string;
  hardCloseAt: string;
  status: 'scheduled' | 'open' | 'closing' | 'closed' | 'cancelled';
  currentPrice: number | null;
  nextMinimumBid: number;
  bidCount: number;
  leader: string | null;
  reserveMet: boolean;
  promoter: boolean;
  result: { outcome: 'sold' | 'unsold'; winner: string | null; finalPrice: number | null } | null;
}

export interface BidView {
  bidId: string;
  bidder: string;
  amount: number;
  maxAmount?: number;
  status: 'active' | 'retracted';
  doubled: boolean;
  placedAt: string;
  seq: number;
}

export interface BidAnswer {
  bidId: string;
  leading: boolean;
  currentPrice: number;
  nextMinimumBid: number;
  endsAt: string;
  closed: boolean;
  replayed: boolean;
}

export interface BidLimits {
  rateMax: number;
  rateWindowMs: number;
  idempotencyTtlMs: number;
}

/** The rule as the scripts read it (see increment() in lua/includes/auctionBook.lua). */
export function encodeRule(r: IncrementRule): string {
  if (r.type === 'absolute') return `abs:${r.amount}`;
  if (r.type === 'percentage') return `pct:${r.basisPoints}`;
  return 'tier:' + r.tiers.map((t) => `${t.from}:${t.increment}`).join(',');
}

/** The smallest raise over `price` (mirrors increment() in auctionBook.lua; test/lua/auction-scripts.test.ts checks they agree on 1,300+ rule and price pairs). */
export function incrementOf(r: IncrementRule, price: number): number {
  if (r.type === 'absolute') return r.amount;
  if (r.type === 'percentage') return Math.max(1, Math.ceil((price * r.basisPoints) / 10_000));
  let inc = 1;
  for (const t of r.tiers) {
    if (price >= t.from) inc = t.increment;
    else break;
  }
  return inc;
}

/** The anonymous handle a bidder is shown as (same as handleOf() in auctionBook.lua). */
export const handleOf = (salt: string, buyerId: string): string =>
  'bidder-' + createHash('sha1').update(`${salt}:${buyerId}`).digest('hex').slice(0, 8);

function termsOf(r: AuctionRow): AuctionTerms {
  return {
    id: r.id, status: r.status, startsAt: r.starts_at.getTime(), endsAt: r.ends_at.getTime(), hardCloseAt: r.hard_close_at.getTime(),
    softCloseMs: r.soft_close_ms, currency: r.currency, startPrice: Number(r.start_price), reservePrice: Number(r.reserve_price),
    buyNowPrice: r.buy_now_price === null ? null : Number(r.buy_now_price), rule: encodeRule(r.increment_rule), salt: r.handle_salt,
    promoter: r.promoter?.enabled === true,
  };
}

function viewOf(r: AuctionRow, live: LiveAuction | undefined): AuctionView {
  const now = Date.now();
  const endsAt = live?.endsAt ?? r.ends_at.getTime();
  const liveStatus = live?.status ?? r.status;
  const status: AuctionView['status'] =
    liveStatus === 'cancelled' ? 'cancelled'
      : liveStatus === 'closed' ? 'closed'
        : now < r.starts_at.getTime() ? 'scheduled'
          : now >= endsAt ? 'closing'
            : 'open';
  const price = live?.price ?? null;
  return {
    id: r.id, sellerId: r.seller_id, title: r.title, collection: r.collection, currency: r.currency, startPrice: Number(r.start_price),
    buyNowPrice: r.buy_now_price === null ? null : Number(r.buy_now_price), increment: r.increment_rule, softCloseSeconds: r.soft_close_ms / 1000,
    startsAt: r.starts_at.toISOString(), endsAt: new Date(endsAt).toISOString(), hardCloseAt: r.hard_close_at.toISOString(), status,
    currentPrice: price, nextMinimumBid: price === null ? Number(r.start_price) : price + incrementOf(r.increment_rule, price),
    bidCount: live?.bidCount ?? 0, leader: live?.leader ? handleOf(r.handle_salt, live.leader) : null,
    reserveMet: price !== null && price >= Number(r.reserve_price), promoter: r.promoter?.enabled === true,
    result: r.outcome
      ? { outcome: r.outcome, winner: r.winner_id ? handleOf(r.handle_salt, r.winner_id) : null, finalPrice: r.final_price === null ? null : Number(r.final_price) }
      : null,
  };
}

export class Auctions {
  constructor(
    private readonly pool: Pool,
    private readonly redis: Redis,
    private readonly limits: BidLimits,
  ) {}

  async create(input: NewAuction, by: Principal): Promise<AuctionView> {
    for (const field of ['startsAt', 'endsAt', 'hardCloseAt'] as const) {
      const v = input[field];
      if (v !== undefined && !isRealDateTime(v)) throw AppError.invalid(`/${field}`, 'is not a real date-time');
    }
    const startsAt = new Date(input.startsAt);
    const endsAt = new Date(input.endsAt);
    const hardCloseAt = new Date(input.hardCloseAt ?? input.endsAt);
    if (!(endsAt > startsAt)) throw AppError.invalid('/endsAt', 'must be after startsAt');
    if (endsAt.getTime() <= Date.now()) throw AppError.invalid('/endsAt', 'must be in the future');
    if (hardCloseAt < endsAt) throw AppError.invalid('/hardCloseAt', 'must not be before endsAt');
    if (hardCloseAt.getTime() - endsAt.getTime() > 7 * 86_400_000) throw AppError.invalid('/hardCloseAt', 'must be within 7 days of endsAt');
    const reserve = input.reservePrice ?? 0;
    if (input.buyNowPrice !== undefined && (input.buyNowPrice < input.startPrice || input.buyNowPrice < reserve)) {
      throw AppError.invalid('/buyNowPrice', 'must be at least the start and reserve prices');
    }
    const rule = input.increment;
    if (rule.type === 'tiered') {
      if (rule.tiers[0]!.from !== 0) throw AppError.invalid('/increment/tiers/0/from', 'must be 0');
      for (let i = 1; i < rule.tiers.length; i++) {
        if (rule.tiers[i]!.from <= rule.tiers[i - 1]!.from) throw AppError.invalid(`/increment/tiers/${i}/from`, 'must be above the previous tier');
      }
    }
    const p = input.promoter;
    if (p && p.maxIntervalSeconds < p.minIntervalSeconds) throw AppError.invalid('/promoter/maxIntervalSeconds', 'must not be below minIntervalSeconds');

    const { rows } = await this.pool.query<AuctionRow>(
      `INSERT INTO auctions (id, seller_id, title, collection, currency, start_price, reserve_price, buy_now_price, increment_rule,
         soft_close_ms, starts_at, ends_at, hard_close_at, promoter, handle_salt)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING ${COLUMNS}`,
      [newAuctionId(), by.role === 'seller' ? by.userId : null, input.title, input.collection ?? null, input.currency, input.startPrice, reserve,
        input.buyNowPrice ?? null, JSON.stringify(rule), input.softCloseSeconds * 1000, startsAt, endsAt, hardCloseAt,
        p ? JSON.stringify(p) : null, randomBytes(12).toString('hex')],
    );
    const row = rows[0]!;
    await this.load(row);
    return viewOf(row, await readLiveAuction(this.redis, row.id));
  }

  async get(auctionId: string): Promise<AuctionView> {
    const row = await this.row(auctionId);
    if (!row) throw new AppError('NOT_FOUND', 'no such auction');
    return viewOf(row, await this.live(row));
  }

  /** The auction's public state in the shape live updates carry (see publishLive in auctionBook.lua). */
  async liveSnapshot(auctionId: string): Promise<object | undefined> {
    const row = await this.row(auctionId);
    if (!row) return undefined;
    const v = viewOf(row, await this.live(row));
    return {
      auctionId, price: v.currentPrice, nextMinimum: v.nextMinimumBid, leader: v.leader, endsAt: Date.parse(v.endsAt), bidCount: v.bidCount,
      status: v.status === 'cancelled' || v.status === 'closed' ? v.status : 'open', reserveMet: v.reserveMet,
    };
  }

  async listOpen(limit: number, after: string | undefined): Promise<{ items: AuctionView[]; next: string | null }> {
    const { rows } = await this.pool.query<AuctionRow>(
      `SELECT ${COLUMNS} FROM auctions WHERE status = 'open' AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $1`,
      [limit + 1, after ?? null],
    );
    const page = rows.slice(0, limit);
    const lives = await Promise.all(page.map((r) => this.live(r)));
    const items = page.map((r, i) => viewOf(r, lives[i])).filter((v) => v.status !== 'closed' && v.status !== 'cancelled');
    return { items, next: rows.length > limit ? page[page.length - 1]!.id : null };
  }

  /** Bid history, newest first, paged by sequence number; `mine` shows only (and fully) the caller's own bids. */
  async bids(auctionId: string, limit: number, before: number | undefined, mine: string | undefined): Promise<{ items: BidView[]; next: number | null }> {
    const row = await this.row(auctionId);
    if (!row) throw new AppError('NOT_FOUND', 'no such auction');
    await this.live(row);
    const index = mine ? auctionKeys.mine(auctionId, mine) : auctionKeys.history(auctionId);
    const ids = await this.redis.zrevrangebyscore(index, before === undefined ? '+inf' : `(${before}`, '-inf', 'LIMIT', 0, limit + 1);
    const page = ids.slice(0, limit);
    const raw = page.length > 0 ? await this.redis.hmget(auctionKeys.bids(auctionId), ...page) : [];
    const items = page.flatMap((id, i) => {
      if (!raw[i]) return [];
      const b = parseStoredBid(id, raw[i]!);
      const view: BidView = {
        bidId: b.bidId, bidder: handleOf(row.handle_salt, b.buyerId), amount: b.amount, status: b.status, doubled: b.bonus > 0,
        placedAt: new Date(b.placedAt).toISOString(), seq: b.seq,
      };
      if (mine) view.maxAmount = b.maxAmount;
      return [view];
    });
    return { items, next: ids.length > limit ? items[items.length - 1]!.seq : null };
  }

  async bid(buyerId: string, auctionId: string, amount: number, maxAmount: number | undefined, idempotencyKey: string | undefined): Promise<BidAnswer> {
    if (maxAmount !== undefined && maxAmount < amount) throw AppError.invalid('/maxAmount', 'must not be below amount');
    const request = {
      auctionId, buyerId, amount, maxAmount, bidId: newBidId(auctionId), idempotencyKey, fingerprint: `a=${amount};m=${maxAmount ?? ''}`,
      rateMax: this.limits.rateMax, rateWindowMs: this.limits.rateWindowMs, idempotencyTtlMs: this.limits.idempotencyTtlMs,
    };
    let out: BidOutcome = await placeBid(this.redis, request);
    if (out.code === Outcome.NotFound && (await this.ensureLoaded(auctionId))) out = await placeBid(this.redis, request);
    switch (out.code) {
      case Outcome.Applied:
      case Outcome.AlreadyApplied:
        return {
          bidId: out.bidId, leading: out.leading, currentPrice: out.currentPrice, nextMinimumBid: out.nextMinimum,
          endsAt: new Date(out.endsAt).toISOString(), closed: out.closed, replayed: out.code === Outcome.AlreadyApplied,
        };
      default:
        throw refusalOf('auction', out);
    }
  }

  async retract(buyerId: string, auctionId: string, bidId: string): Promise<{ bidId: string; status: 'retracted'; currentPrice: number | null; endsAt: string }> {
    if (!(await this.ensureLoaded(auctionId))) throw new AppError('NOT_FOUND', 'no such auction');
    const out = await retractBid(this.redis, auctionId, buyerId, bidId);
    switch (out.code) {
      case Outcome.Applied:
      case Outcome.AlreadyApplied:
        return { bidId, status: 'retracted', currentPrice: out.price, endsAt: new Date(out.endsAt).toISOString() };
      default:
        // Another bidder's bid is answered exactly like a missing one.
        throw refusalOf('bid', out);
    }
  }

  async cancel(auctionId: string, by: Principal): Promise<AuctionView> {
    const row = this.authorized(await this.row(auctionId), by);
    await this.live(row);
    const out = await closeAuction(this.redis, auctionId, 'cancel');
    if (out.code === Outcome.AlreadyApplied && out.status !== 'cancelled') throw new AppError('AUCTION_CLOSED', 'a closed auction cannot be cancelled');
    const { rows } = await this.pool.query<AuctionRow>(
      `UPDATE auctions SET status = 'cancelled', closed_at = coalesce(closed_at, now()) WHERE id = $1 AND status <> 'closed' RETURNING ${COLUMNS}`,
      [auctionId],
    );
    await this.redis.zrem(AUCTION_DEADLINES, auctionId);
    return viewOf(rows[0] ?? row, await readLiveAuction(this.redis, auctionId));
  }

  /** Retracts every bid of a buyer in open auctions (an operator deleting the buyer). Returns how many. */
  async retractAllOf(buyerId: string): Promise<number> {
    const { rows } = await this.pool.query<{ id: string }>(`SELECT id FROM auctions WHERE status = 'open'`);
    let retracted = 0;
    for (const { id } of rows) {
      const bids = await this.redis.zrevrange(auctionKeys.mine(id, buyerId), 0, -1);
      for (const bidId of bids) {
        const out = await retractBid(this.redis, id, buyerId, bidId, true);
        if (out.code === Outcome.Applied) retracted++;
      }
    }
    return retracted;
  }

  /** Standing bids of bidders not yet lucky (the promoter's candidates). */
  async standingBids(auctionId: string): Promise<StoredBid[]> {
    const standing = await this.redis.hvals(auctionKeys.standing(auctionId));
    if (standing.length === 0) return [];
    const raw = await this.redis.hmget(auctionKeys.bids(auctionId), ...standing);
    return standing.flatMap((id, i) => (raw[i] ? [parseStoredBid(id, raw[i]!)] : [])).filter((b) => b.status === 'active' && b.bonus === 0);
  }

  async promoterOf(auctionId: string): Promise<PromoterSettings | null> {
    const { rows } = await this.pool.query<{ promoter: PromoterSettings | null }>('SELECT promoter FROM auctions WHERE id = $1', [auctionId]);
    return rows[0]?.promoter ?? null;
  }

  /** Loads an auction into Redis if Redis does not know it. Returns false when it does not exist. */
  async ensureLoaded(auctionId: string): Promise<boolean> {
    if ((await this.redis.exists(auctionKeys.auction(auctionId))) === 1) return true;
    const row = await this.row(auctionId);
    if (!row) return false;
    await this.load(row);
    return true;
  }

  /** Loads every open auction (api and scheduler start-up). */
  async loadOpen(): Promise<number> {
    const { rows } = await this.pool.query<AuctionRow>(`SELECT ${COLUMNS} FROM auctions WHERE status = 'open'`);
    for (const r of rows) await this.load(r);
    return rows.length;
  }

  private async live(row: AuctionRow): Promise<LiveAuction | undefined> {
    const live = await readLiveAuction(this.redis, row.id);
    if (live || row.status !== 'open') return live;
    await this.load(row);
    return readLiveAuction(this.redis, row.id);
  }

  private async load(row: AuctionRow): Promise<void> {
    const terms = termsOf(row);
    await loadAuction(this.redis, terms);
    const multi = this.redis.multi().sadd(OUTBOX_REGISTRY, auctionKeys.outbox(row.id));
    if (row.status === 'open') {
      // The deadline is a hint: the close script decides, and reports an extended end.
      multi.zadd(AUCTION_DEADLINES, 'NX', terms.endsAt, row.id);
      if (terms.promoter && row.promoter) multi.zadd(AUCTION_PROMOTIONS, 'NX', nextPromotionAt(row.promoter, Math.max(Date.now(), terms.startsAt)), row.id);
    }
    await multi.exec();
  }

  private async row(auctionId: string): Promise<AuctionRow | undefined> {
    const { rows } = await this.pool.query<AuctionRow>(`SELECT ${COLUMNS} FROM auctions WHERE id = $1`, [auctionId]);
    return rows[0];
  }

  private authorized(row: AuctionRow | undefined, by: Principal): AuctionRow {
    if (!row || (by.role === 'seller' && row.seller_id !== by.userId)) throw new AppError('NOT_FOUND', 'no such auction');
    return row;
  }
}

/** A random moment in the promoter's interval after `from`. */
export function nextPromotionAt(p: PromoterSettings, from: number, random: () => number = Math.random): number {
  const span = (p.maxIntervalSeconds - p.minIntervalSeconds) * 1000;
  return from + p.minIntervalSeconds * 1000 + Math.floor(random() * span);
}
