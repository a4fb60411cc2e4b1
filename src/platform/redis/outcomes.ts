/**
 * The one table of script outcomes. Every Lua script answers with an array
 * whose first element is one of these numbers, and a meaning shared by
 * several scripts has one number (an unknown sale and an unknown auction are
 * both NotFound). The function library defines the same table for the
 * scripts as `OUTCOME` (lowerCamel names: `OUTCOME.soldOut`), generated from
 * this enum, so the two cannot drift. Business refusals are outcomes;
 * `redis.error_reply` is for programming errors only.
 *
 * `refusalOf` is the one place a refusal becomes the answer a caller gets.
 */
import { AppError, SOLD_OUT } from '../errors.js';

export enum Outcome {
  /** Decided and applied: a purchase or bid accepted, a bid retracted or doubled, a cancellation requested, an auction closed, stock added, state loaded. */
  Applied = 1,
  /** The effect already holds (an idempotent replay, a bid already retracted, an auction already closed, a settlement already applied): nothing changed. */
  AlreadyApplied = 2,
  /** The sale, auction or purchase is unknown (to this buyer). */
  NotFound = -1,
  /** It opens later. */
  NotOpenYet = -2,
  /** It ended, was closed or was cancelled. */
  Closed = -3,
  /** The caller's attempts in this window are used up. */
  RateLimited = -4,
  /** The Idempotency-Key was used with another request. */
  IdempotencyMismatch = -5,
  /** Not enough stock for the quantity. */
  SoldOut = -6,
  /** The buyer's per-sale limit would be passed. */
  LimitReached = -7,
  /** Another purchase of the buyer is still being settled. */
  InProgress = -8,
  /** The purchase failed, so there is nothing to cancel. */
  NotCancellable = -9,
  /** The bid is below the next minimum bid. */
  BidTooLow = -10,
  /** The bid's maximum is not above the bidder's own standing one. */
  NotAboveOwnBid = -11,
  /** Retractions are closed in the last moments of an auction. */
  TooLateToRetract = -12,
  /** No such bid of this buyer in the auction. */
  UnknownBid = -13,
  /** The auction's promoter is off. */
  PromoterOff = -14,
  /** The auction's end has not come (it was extended). */
  NotDue = -15,
}

/** The outcome table as the scripts read it: `local OUTCOME = { applied = 1, … }`. */
export function luaOutcomeTable(): string {
  const entries = Object.entries(Outcome).filter(([, v]) => typeof v === 'number');
  return `local OUTCOME = { ${entries.map(([k, v]) => `${k[0]!.toLowerCase()}${k.slice(1)} = ${v}`).join(', ')} }\n`;
}

/** What a refusal is about: names the missing thing and picks the product's error codes. */
export type Subject = 'sale' | 'purchase' | 'auction' | 'bid';

/** A refused decision, as the script wrappers decode it. */
export type Refusal =
  | { code: Outcome.NotFound }
  | { code: Outcome.NotOpenYet; startsAt: number }
  | { code: Outcome.Closed; status?: string }
  | { code: Outcome.RateLimited; retryAfterMs: number }
  | { code: Outcome.IdempotencyMismatch; purchaseId?: string; bidId?: string }
  | { code: Outcome.SoldOut; available: number }
  | { code: Outcome.LimitReached; bought: number; limit: number }
  | { code: Outcome.InProgress; purchaseId: string }
  | { code: Outcome.NotCancellable; status: string }
  | { code: Outcome.BidTooLow; nextMinimum: number }
  | { code: Outcome.NotAboveOwnBid; ownMaximum: number }
  | { code: Outcome.TooLateToRetract; endsAt: number }
  | { code: Outcome.UnknownBid };

const iso = (ms: number) => new Date(ms).toISOString();

/** The answer to a refused decision about `subject`. */
export function refusalOf(subject: Subject, r: Refusal): AppError {
  const sale = subject === 'sale' || subject === 'purchase';
  switch (r.code) {
    case Outcome.NotFound:
    case Outcome.UnknownBid:
      return new AppError('NOT_FOUND', `no such ${subject}`);
    case Outcome.NotOpenYet:
      return new AppError(sale ? 'SALE_NOT_OPEN' : 'AUCTION_NOT_OPEN', `the ${sale ? 'sale' : 'auction'} opens at ${iso(r.startsAt)}`, { startsAt: iso(r.startsAt) });
    case Outcome.Closed:
      if (sale) return new AppError('SALE_ENDED');
      return new AppError('AUCTION_CLOSED', r.status === 'cancelled' ? 'the auction was cancelled' : 'the auction is closed', { auctionStatus: r.status });
    case Outcome.RateLimited: {
      const seconds = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
      return new AppError('RATE_LIMITED', `retry in ${seconds}s`, { retryAfterMs: r.retryAfterMs }, { 'Retry-After': String(seconds) });
    }
    case Outcome.IdempotencyMismatch:
      return new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with another body', r.purchaseId !== undefined ? { purchaseId: r.purchaseId } : { bidId: r.bidId });
    case Outcome.SoldOut:
      return r.available === 0 ? SOLD_OUT : new AppError('NOT_ENOUGH_STOCK', `only ${r.available} left`, { available: r.available });
    case Outcome.LimitReached:
      return new AppError('LIMIT_REACHED', `the limit is ${r.limit} per buyer and you have ${r.bought}`, { limit: r.limit, bought: r.bought });
    case Outcome.InProgress:
      return new AppError('PURCHASE_IN_PROGRESS', 'wait until your purchase in flight is settled', { purchaseId: r.purchaseId, statusUrl: `/v1/purchases/${r.purchaseId}` });
    case Outcome.NotCancellable:
      return new AppError('NOT_CANCELLABLE', `the purchase is ${r.status}`);
    case Outcome.BidTooLow:
      return new AppError('BID_TOO_LOW', `the next minimum bid is ${r.nextMinimum}`, { nextMinimumBid: r.nextMinimum });
    case Outcome.NotAboveOwnBid:
      return new AppError('NOT_ABOVE_OWN_BID', `your standing maximum is ${r.ownMaximum}`, { ownMaximum: r.ownMaximum });
    case Outcome.TooLateToRetract:
      return new AppError('RETRACTION_TOO_LATE', `bids cannot be retracted after ${iso(r.endsAt)} minus the soft-close window`);
  }
}
