/**
 * Typed wrappers of the auction scripts (lua/auction), the only callers of
 * them: each builds KEYS in the order the script's header lists and decodes
 * the reply, whose first element is a platform `Outcome`. Also the reader of
 * an auction's live hash.
 */
import type { Redis } from 'ioredis';
import { Outcome } from '../platform/redis/outcomes.js';
import { runScript } from '../platform/redis/functions.js';
import { RELAY_GROUP } from '../platform/messaging/outbox.js';
import { LIVE_CHANNEL } from '../live/keys.js';
import { auctionKeys } from './keys.js';
import { MAX_OFFERS } from './rules.js';
import type { AuctionCreatedData } from './events.js';

type Reply = (string | number)[];

/**
 * How to read each reply a script's header lists, by its outcome code. A
 * reply whose code has no entry is a programming error, not a refusal.
 */
type Decoders<T extends { code: Outcome }> = { [C in T['code']]: (reply: Reply, code: C) => WithCode<T, C> };
/** The member of outcome union T that code C answers with, its code narrowed to C. */
type WithCode<T, C> = T extends { code: infer Codes } ? (C extends Codes ? Omit<T, 'code'> & { code: C } : never) : never;

function decode<T extends { code: Outcome }>(script: string, reply: Reply, decoders: Decoders<T>): T {
  const code = Number(reply[0]) as T['code'];
  const decoder = (decoders as Partial<Record<Outcome, (reply: Reply, code: T['code']) => T>>)[code];
  if (!decoder) throw new Error(`${script}: unexpected reply ${JSON.stringify(reply)}`);
  return decoder(reply, code);
}

/** Runs one script and decodes its reply. */
async function run<T extends { code: Outcome }>(redis: Redis, script: string, keys: string[], args: (string | number)[], decoders: Decoders<T>): Promise<T> {
  return decode(script, (await runScript(redis, script, keys, args)) as Reply, decoders);
}

// The replies several scripts share.
const bare = <C extends Outcome>(_reply: Reply, code: C) => ({ code });
const withStatus = <C extends Outcome>(reply: Reply, code: C) => ({ code, status: String(reply[1]) });
const withEndsAt = <C extends Outcome>(reply: Reply, code: C) => ({ code, endsAt: Number(reply[1]) });
/** A price field: '' while the auction has no bid. */
const priceOf = (field: string | number | undefined): number | null => (field === '' ? null : Number(field));

/** KEYS[1..4] of every script that reads or changes the book: auction, bids, book, standing. */
const bookKeys = (auctionId: string) => [auctionKeys.auction(auctionId), auctionKeys.bids(auctionId), auctionKeys.book(auctionId), auctionKeys.standing(auctionId)];

// --- loadAuction ------------------------------------------------------------

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

/** Creates the auction's live state unless Redis has it, with its auction.created event when `created` is given; true when created. */
export async function loadAuction(redis: Redis, terms: AuctionTerms, created?: AuctionCreatedData): Promise<boolean> {
  const loaded = await run<{ code: Outcome.Applied | Outcome.AlreadyApplied }>(
    redis,
    'loadAuction',
    [auctionKeys.auction(terms.id), auctionKeys.outbox(terms.id)],
    [terms.id, terms.status, terms.startsAt, terms.endsAt, terms.hardCloseAt, terms.softCloseMs, terms.currency, terms.startPrice, terms.reservePrice,
      terms.buyNowPrice ?? 0, terms.rule, terms.salt, terms.promoter ? '1' : '0', RELAY_GROUP, created ? JSON.stringify(created) : ''],
    { [Outcome.Applied]: bare, [Outcome.AlreadyApplied]: bare },
  );
  return loaded.code === Outcome.Applied;
}

// --- placeBids --------------------------------------------------------------

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

/**
 * Decides bids on one auction in one call, in order (see batcher.ts for who
 * groups them). Each bid gets its own result: a reply that cannot be decoded
 * fails that bid alone; a failed call fails them all.
 */
export async function placeBids(redis: Redis, auctionId: string, requests: BidRequest[]): Promise<PromiseSettledResult<BidOutcome>[]> {
  const keys = [...bookKeys(auctionId), auctionKeys.history(auctionId), auctionKeys.outbox(auctionId)];
  const args: (string | number)[] = [LIVE_CHANNEL, MAX_OFFERS];
  for (const bid of requests) {
    keys.push(auctionKeys.mine(auctionId, bid.buyerId), auctionKeys.rate(auctionId, bid.buyerId), auctionKeys.idempotency(auctionId, bid.buyerId, bid.idempotencyKey ?? ''));
    args.push(bid.buyerId, bid.amount, bid.maxAmount ?? '', bid.bidId, bid.idempotencyKey ? (bid.fingerprint ?? '') : '', bid.rateMax, bid.rateWindowMs,
      bid.idempotencyTtlMs);
  }
  const replies = (await runScript(redis, 'placeBids', keys, args)) as Reply[];
  return requests.map((_, i): PromiseSettledResult<BidOutcome> => {
    try {
      return { status: 'fulfilled', value: decode('placeBids', replies[i]!, bidDecoders) };
    } catch (reason) {
      return { status: 'rejected', reason };
    }
  });
}

const decided = <C extends Outcome.Applied | Outcome.AlreadyApplied>(reply: Reply, code: C) => ({
  code, bidId: String(reply[1]), leading: Number(reply[2]) === 1, currentPrice: Number(reply[3]), endsAt: Number(reply[4]),
  nextMinimum: Number(reply[5]), closed: Number(reply[6]) === 1,
});

const bidDecoders: Decoders<BidOutcome> = {
  [Outcome.Applied]: decided,
  [Outcome.AlreadyApplied]: decided,
  [Outcome.BidTooLow]: (reply, code) => ({ code, nextMinimum: Number(reply[1]) }),
  [Outcome.NotAboveOwnBid]: (reply, code) => ({ code, ownMaximum: Number(reply[1]) }),
  [Outcome.Closed]: withStatus,
  [Outcome.NotOpenYet]: (reply, code) => ({ code, startsAt: Number(reply[1]) }),
  [Outcome.RateLimited]: (reply, code) => ({ code, retryAfterMs: Number(reply[1]) }),
  [Outcome.NotFound]: bare,
  [Outcome.IdempotencyMismatch]: (reply, code) => ({ code, bidId: String(reply[1]) }),
};

// --- retractBid -------------------------------------------------------------

export type RetractOutcome =
  | { code: Outcome.Applied | Outcome.AlreadyApplied; price: number | null; endsAt: number }
  | { code: Outcome.Closed; status: string }
  | { code: Outcome.NotFound }
  | { code: Outcome.TooLateToRetract; endsAt: number }
  | { code: Outcome.UnknownBid };

/** Retracts one of the buyer's bids; `force` (an operator deleting the buyer) retracts inside the soft-close window too. */
export function retractBid(redis: Redis, auctionId: string, buyerId: string, bidId: string, force = false): Promise<RetractOutcome> {
  return run(
    redis,
    'retractBid',
    [...bookKeys(auctionId), auctionKeys.mine(auctionId, buyerId), auctionKeys.outbox(auctionId)],
    [buyerId, bidId, force ? '1' : '0', LIVE_CHANNEL],
    {
      [Outcome.Applied]: retracted,
      [Outcome.AlreadyApplied]: retracted,
      [Outcome.Closed]: withStatus,
      [Outcome.TooLateToRetract]: withEndsAt,
      [Outcome.NotFound]: bare,
      [Outcome.UnknownBid]: bare,
    },
  );
}

const retracted = <C extends Outcome.Applied | Outcome.AlreadyApplied>(reply: Reply, code: C) => ({ code, price: priceOf(reply[1]), endsAt: Number(reply[2]) });

// --- promoteBid -------------------------------------------------------------

export type PromoteOutcome =
  | { code: Outcome.Applied; buyerId: string; added: number; price: number }
  | { code: Outcome.Closed; status: string }
  | { code: Outcome.NotFound | Outcome.UnknownBid | Outcome.PromoterOff };

/** Doubles one standing bid for the promoter, unless that would take its maximum past `maxAmount`. */
export function promoteBid(redis: Redis, auctionId: string, bidId: string, maxAmount: number): Promise<PromoteOutcome> {
  return run(
    redis,
    'promoteBid',
    [...bookKeys(auctionId), auctionKeys.outbox(auctionId)],
    [bidId, LIVE_CHANNEL, maxAmount],
    {
      [Outcome.Applied]: (reply, code) => ({ code, buyerId: String(reply[1]), added: Number(reply[2]), price: Number(reply[3]) }),
      [Outcome.Closed]: withStatus,
      [Outcome.NotFound]: bare,
      [Outcome.UnknownBid]: bare,
      [Outcome.PromoterOff]: bare,
    },
  );
}

// --- closeAuction -----------------------------------------------------------

export type CloseOutcome =
  | { code: Outcome.Applied; status: 'closed' | 'cancelled'; price: number | null; leader: string; reserveMet: boolean }
  | { code: Outcome.AlreadyApplied; status: string }
  | { code: Outcome.NotFound }
  | { code: Outcome.NotDue; endsAt: number };

/** Closes an auction whose end has passed (`time`), or cancels one that has not closed (`cancel`). */
export function closeAuction(redis: Redis, auctionId: string, mode: 'time' | 'cancel'): Promise<CloseOutcome> {
  return run(
    redis,
    'closeAuction',
    [...bookKeys(auctionId), auctionKeys.outbox(auctionId)],
    [mode, LIVE_CHANNEL, MAX_OFFERS],
    {
      [Outcome.Applied]: (reply, code) => ({
        code, status: String(reply[1]) as 'closed' | 'cancelled', price: priceOf(reply[2]), leader: String(reply[3]), reserveMet: Number(reply[4]) === 1,
      }),
      [Outcome.AlreadyApplied]: withStatus,
      [Outcome.NotFound]: bare,
      [Outcome.NotDue]: withEndsAt,
    },
  );
}

// --- the live hash ----------------------------------------------------------

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

/** The auction's live state as the scripts keep it, or undefined when Redis does not know the auction. */
export async function readLiveAuction(redis: Redis, auctionId: string): Promise<LiveAuction | undefined> {
  const live = await redis.hgetall(auctionKeys.auction(auctionId));
  if (!live.id) return undefined;
  return {
    status: live.status as LiveAuction['status'], startsAt: Number(live.startsAt), endsAt: Number(live.endsAt), hardCloseAt: Number(live.hardCloseAt),
    price: live.price ? Number(live.price) : null, leader: live.leader || null, leaderBid: live.leaderBid || null, bidCount: Number(live.bidCount),
    seq: Number(live.seq), startPrice: Number(live.startPrice), reservePrice: Number(live.reserve), rule: live.rule!, salt: live.salt!,
    closedAt: live.closedAt ? Number(live.closedAt) : null, closeReason: live.closeReason || null,
  };
}
