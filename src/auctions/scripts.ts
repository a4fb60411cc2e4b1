/**
 * Typed wrappers of the auction scripts (lua/auction): they build KEYS in the
 * order each script's header lists and map output codes to results.
 */
import { Outcome } from '../platform/redis/outcomes.js';
import type { Redis } from 'ioredis';
import { auctionKeys } from './keys.js';
import { LIVE_CHANNEL } from '../live/keys.js';
import { RELAY_GROUP } from '../platform/messaging/outbox.js';
import { runScript } from '../platform/redis/functions.js';

/** The most bidders a close event offers the lot to, in order. */
export const MAX_OFFERS = 100;

type Reply = (string | number)[];

export interface BidDecision {
  bidId: string;
  leading: boolean;
  currentPrice: number;
  endsAt: number;
  nextMinimum: number;
  closed: boolean;
}

export type BidOutcome =
  | ({ code: Outcome.Applied | Outcome.AlreadyApplied } & BidDecision)
  | { code: Outcome.BidTooLow; nextMinimum: number }
  | { code: Outcome.NotAboveOwnBid; ownMaximum: number }
  | { code: Outcome.Closed; status: string }
  | { code: Outcome.NotOpenYet; startsAt: number }
  | { code: Outcome.RateLimited; retryAfterMs: number }
  | { code: Outcome.NotFound }
  | { code: Outcome.IdempotencyMismatch; bidId: string };

export interface BidRequest {
  auctionId: string;
  buyerId: string;
  amount: number;
  maxAmount?: number;
  bidId: string;
  idempotencyKey?: string;
  fingerprint?: string;
  rateMax: number;
  rateWindowMs: number;
  idempotencyTtlMs: number;
}

/** The most bids one placeBids call decides (a call holds Redis for about 50 µs a bid). */
export const MAX_BIDS_PER_CALL = 32;

interface PendingBid {
  r: BidRequest;
  resolve: (o: BidOutcome) => void;
  reject: (err: unknown) => void;
}

/** Bids waiting for this event-loop turn to end, per client, per auction. */
const pendingBids = new WeakMap<Redis, Map<string, PendingBid[]>>();

/**
 * Decides one bid. The bids a process places on the same auction in one
 * event-loop turn (uWS hands it every request that arrived) go to Redis as
 * one placeBids call, decided in the order they were placed, each exactly
 * as if alone: what they share (the auction hash, the clock, the live
 * update) is then read and written once per call instead of once per bid.
 */
export function placeBid(redis: Redis, r: BidRequest): Promise<BidOutcome> {
  return new Promise((resolve, reject) => {
    let byAuction = pendingBids.get(redis);
    if (!byAuction) {
      byAuction = new Map();
      pendingBids.set(redis, byAuction);
    }
    if (byAuction.size === 0) setImmediate(flushBids, redis);
    let queue = byAuction.get(r.auctionId);
    if (!queue) {
      queue = [];
      byAuction.set(r.auctionId, queue);
    }
    queue.push({ r, resolve, reject });
  });
}

function flushBids(redis: Redis): void {
  const byAuction = pendingBids.get(redis)!;
  pendingBids.set(redis, new Map());
  for (const [auctionId, queue] of byAuction) {
    for (let i = 0; i < queue.length; i += MAX_BIDS_PER_CALL) sendBids(redis, auctionId, queue.slice(i, i + MAX_BIDS_PER_CALL));
  }
}

function sendBids(redis: Redis, id: string, batch: PendingBid[]): void {
  const keys = [auctionKeys.auction(id), auctionKeys.bids(id), auctionKeys.book(id), auctionKeys.standing(id), auctionKeys.history(id), auctionKeys.outbox(id)];
  const args: (string | number)[] = [LIVE_CHANNEL, MAX_OFFERS];
  for (const { r } of batch) {
    keys.push(auctionKeys.mine(id, r.buyerId), auctionKeys.rate(id, r.buyerId), auctionKeys.idempotency(id, r.buyerId, r.idempotencyKey ?? ''));
    args.push(r.buyerId, r.amount, r.maxAmount ?? '', r.bidId, r.idempotencyKey ? (r.fingerprint ?? '') : '', r.rateMax, r.rateWindowMs, r.idempotencyTtlMs);
  }
  runScript(redis, 'placeBids', keys, args).then(
    (replies) => {
      const list = replies as Reply[];
      batch.forEach((p, i) => {
        try {
          p.resolve(bidOutcomeOf(list[i]!));
        } catch (err) {
          p.reject(err);
        }
      });
    },
    (err: unknown) => {
      for (const p of batch) p.reject(err);
    },
  );
}

function bidOutcomeOf(reply: Reply): BidOutcome {
  const code = Number(reply[0]) as Outcome;
  switch (code) {
    case Outcome.Applied:
    case Outcome.AlreadyApplied:
      return {
        code, bidId: String(reply[1]), leading: Number(reply[2]) === 1, currentPrice: Number(reply[3]), endsAt: Number(reply[4]),
        nextMinimum: Number(reply[5]), closed: Number(reply[6]) === 1,
      };
    case Outcome.BidTooLow:
      return { code, nextMinimum: Number(reply[1]) };
    case Outcome.NotAboveOwnBid:
      return { code, ownMaximum: Number(reply[1]) };
    case Outcome.Closed:
      return { code, status: String(reply[1]) };
    case Outcome.NotOpenYet:
      return { code, startsAt: Number(reply[1]) };
    case Outcome.RateLimited:
      return { code, retryAfterMs: Number(reply[1]) };
    case Outcome.NotFound:
      return { code };
    case Outcome.IdempotencyMismatch:
      return { code, bidId: String(reply[1]) };
    default:
      throw new Error(`placeBids: unexpected reply ${JSON.stringify(reply)}`);
  }
}

export type RetractOutcome =
  | { code: Outcome.Applied | Outcome.AlreadyApplied; price: number | null; endsAt: number }
  | { code: Outcome.Closed; status: string }
  | { code: Outcome.NotFound }
  | { code: Outcome.TooLateToRetract; endsAt: number }
  | { code: Outcome.UnknownBid };

export async function retractBid(redis: Redis, auctionId: string, buyerId: string, bidId: string, force = false): Promise<RetractOutcome> {
  const id = auctionId;
  const reply = (await runScript(
    redis,
    'retractBid',
    [auctionKeys.auction(id), auctionKeys.bids(id), auctionKeys.book(id), auctionKeys.standing(id), auctionKeys.mine(id, buyerId), auctionKeys.outbox(id)],
    [buyerId, bidId, force ? '1' : '0', LIVE_CHANNEL],
  )) as Reply;
  const code = Number(reply[0]) as Outcome;
  switch (code) {
    case Outcome.Applied:
    case Outcome.AlreadyApplied:
      return { code, price: reply[1] === '' ? null : Number(reply[1]), endsAt: Number(reply[2]) };
    case Outcome.Closed:
      return { code, status: String(reply[1]) };
    case Outcome.TooLateToRetract:
      return { code, endsAt: Number(reply[1]) };
    case Outcome.NotFound:
    case Outcome.UnknownBid:
      return { code };
    default:
      throw new Error(`retractBid: unexpected reply ${JSON.stringify(reply)}`);
  }
}

export type PromoteOutcome =
  | { code: Outcome.Applied; buyerId: string; added: number; price: number }
  | { code: Outcome.Closed; status: string }
  | { code: Outcome.NotFound | Outcome.UnknownBid | Outcome.PromoterOff };

export async function promoteBid(redis: Redis, auctionId: string, bidId: string, maxAmount: number): Promise<PromoteOutcome> {
  const id = auctionId;
  const reply = (await runScript(
    redis,
    'promoteBid',
    [auctionKeys.auction(id), auctionKeys.bids(id), auctionKeys.book(id), auctionKeys.standing(id), auctionKeys.outbox(id)],
    [bidId, LIVE_CHANNEL, maxAmount],
  )) as Reply;
  const code = Number(reply[0]) as Outcome;
  if (code === Outcome.Applied) return { code, buyerId: String(reply[1]), added: Number(reply[2]), price: Number(reply[3]) };
  if (code === Outcome.Closed) return { code, status: String(reply[1]) };
  if (code === Outcome.NotFound || code === Outcome.UnknownBid || code === Outcome.PromoterOff) return { code };
  throw new Error(`promoteBid: unexpected reply ${JSON.stringify(reply)}`);
}

export type CloseOutcome =
  | { code: Outcome.Applied; status: 'closed' | 'cancelled'; price: number | null; leader: string; reserveMet: boolean }
  | { code: Outcome.AlreadyApplied; status: string }
  | { code: Outcome.NotFound }
  | { code: Outcome.NotDue; endsAt: number };

export async function closeAuction(redis: Redis, auctionId: string, mode: 'time' | 'cancel'): Promise<CloseOutcome> {
  const id = auctionId;
  const reply = (await runScript(
    redis,
    'closeAuction',
    [auctionKeys.auction(id), auctionKeys.bids(id), auctionKeys.book(id), auctionKeys.standing(id), auctionKeys.outbox(id)],
    [mode, LIVE_CHANNEL, MAX_OFFERS],
  )) as Reply;
  const code = Number(reply[0]) as Outcome;
  switch (code) {
    case Outcome.Applied:
      return {
        code, status: String(reply[1]) as 'closed' | 'cancelled', price: reply[2] === '' ? null : Number(reply[2]), leader: String(reply[3]),
        reserveMet: Number(reply[4]) === 1,
      };
    case Outcome.AlreadyApplied:
      return { code, status: String(reply[1]) };
    case Outcome.NotFound:
      return { code };
    case Outcome.NotDue:
      return { code, endsAt: Number(reply[1]) };
    default:
      throw new Error(`closeAuction: unexpected reply ${JSON.stringify(reply)}`);
  }
}

export interface AuctionTerms {
  id: string;
  status: 'open' | 'closed' | 'cancelled';
  startsAt: number;
  endsAt: number;
  hardCloseAt: number;
  softCloseMs: number;
  currency: string;
  startPrice: number;
  reservePrice: number;
  buyNowPrice: number | null;
  /** Encoded increment rule: 'abs:<n>' | 'pct:<basis points>' | 'tier:<from>:<step>,…'. */
  rule: string;
  salt: string;
  promoter: boolean;
}

export async function loadAuction(redis: Redis, t: AuctionTerms): Promise<boolean> {
  const reply = (await runScript(
    redis,
    'loadAuction',
    [auctionKeys.auction(t.id), auctionKeys.outbox(t.id)],
    [t.id, t.status, t.startsAt, t.endsAt, t.hardCloseAt, t.softCloseMs, t.currency, t.startPrice, t.reservePrice, t.buyNowPrice ?? 0, t.rule,
      t.salt, t.promoter ? '1' : '0', RELAY_GROUP],
  )) as Reply;
  return Number(reply[0]) === 1;
}

/** One bid as Redis stores it. */
export interface StoredBid {
  bidId: string;
  buyerId: string;
  amount: number;
  maxAmount: number;
  seq: number;
  status: 'active' | 'retracted';
  placedAt: number;
  bonus: number;
}

export function parseStoredBid(bidId: string, raw: string): StoredBid {
  const [buyerId, amount, max, seq, status, at, bonus] = raw.split('|');
  return {
    bidId, buyerId: buyerId!, amount: Number(amount), maxAmount: Number(max), seq: Number(seq), status: status as StoredBid['status'],
    placedAt: Number(at), bonus: Number(bonus),
  };
}

export const encodeStoredBid = (b: StoredBid): string =>
  [b.buyerId, b.amount, b.maxAmount, b.seq, b.status, b.placedAt, b.bonus].join('|');

/** The book member of a standing bid (see lua/includes/auctionBook.lua). */
export const bookMemberOf = (b: StoredBid): string => String(999_999_999_999 - b.seq).padStart(12, '0') + ':' + b.buyerId + ':' + b.bidId;

/**
 * The auction hash's `top` field: the book's two best standing bids, in the
 * book's order (highest maximum first, the earlier bid among equals); see
 * lua/includes/auctionBook.lua.
 */
export function bookTopOf(standing: StoredBid[]): string {
  const [l, r] = [...standing].sort((x, y) => y.maxAmount - x.maxAmount || x.seq - y.seq);
  if (!l) return '';
  return [l.buyerId, l.bidId, l.amount, l.maxAmount, r?.buyerId ?? '', r?.maxAmount ?? ''].join('|');
}

export interface LiveAuction {
  status: 'open' | 'closed' | 'cancelled';
  startsAt: number;
  endsAt: number;
  hardCloseAt: number;
  price: number | null;
  leader: string | null;
  leaderBid: string | null;
  bidCount: number;
  seq: number;
  startPrice: number;
  reservePrice: number;
  rule: string;
  salt: string;
  closedAt: number | null;
  closeReason: string | null;
}

export async function readLiveAuction(redis: Redis, auctionId: string): Promise<LiveAuction | undefined> {
  const h = await redis.hgetall(auctionKeys.auction(auctionId));
  if (!h.id) return undefined;
  return {
    status: h.status as LiveAuction['status'], startsAt: Number(h.startsAt), endsAt: Number(h.endsAt), hardCloseAt: Number(h.hardCloseAt),
    price: h.price ? Number(h.price) : null, leader: h.leader || null, leaderBid: h.leaderBid || null, bidCount: Number(h.bidCount),
    seq: Number(h.seq), startPrice: Number(h.startPrice), reservePrice: Number(h.reserve), rule: h.rule!, salt: h.salt!,
    closedAt: h.closedAt ? Number(h.closedAt) : null, closeReason: h.closeReason || null,
  };
}
