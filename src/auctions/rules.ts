/**
 * The rules of an auction that hold outside Redis: the limits its terms
 * must respect, the checks of a new auction's terms, the increment rule
 * (also decided in Lua: lua/includes/auctionBook.lua), a bidder's handle
 * and the promoter's timing.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../platform/errors.js';
import { isRealDateTime } from '../platform/time.js';

/** Largest auction amount in minor units: doubling and percentages stay exact in Lua's doubles. */
export const MAX_AUCTION_AMOUNT = 100_000_000_000;
export const MAX_SOFT_CLOSE_SECONDS = 3_600;
export const MAX_TIERS = 20;
/** The most bidders a close event offers the lot to, in order. */
export const MAX_OFFERS = 100;
/** How far past its end an auction's hard close may be. */
const MAX_HARD_CLOSE_DELAY_MS = 7 * 86_400_000;

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

/** A new auction's terms, as a seller or operator asks for them. */
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

/** The dates and reserve of terms that passed checkTerms. */
export interface CheckedTerms {
  startsAt: Date;
  endsAt: Date;
  hardCloseAt: Date;
  reservePrice: number;
}

/**
 * Checks what the request schema cannot: real dates in order and in the
 * future, a hard close within reach of the end, a buy-now price at least the
 * start and reserve prices, tiers in ascending order from 0, and a promoter
 * interval that is not upside down.
 */
export function checkTerms(terms: NewAuction, now = Date.now()): CheckedTerms {
  for (const field of ['startsAt', 'endsAt', 'hardCloseAt'] as const) {
    const value = terms[field];
    if (value !== undefined && !isRealDateTime(value)) throw AppError.invalid(`/${field}`, 'is not a real date-time');
  }
  const startsAt = new Date(terms.startsAt);
  const endsAt = new Date(terms.endsAt);
  const hardCloseAt = new Date(terms.hardCloseAt ?? terms.endsAt);
  if (!(endsAt > startsAt)) throw AppError.invalid('/endsAt', 'must be after startsAt');
  if (endsAt.getTime() <= now) throw AppError.invalid('/endsAt', 'must be in the future');
  if (hardCloseAt < endsAt) throw AppError.invalid('/hardCloseAt', 'must not be before endsAt');
  if (hardCloseAt.getTime() - endsAt.getTime() > MAX_HARD_CLOSE_DELAY_MS) throw AppError.invalid('/hardCloseAt', 'must be within 7 days of endsAt');
  const reservePrice = terms.reservePrice ?? 0;
  if (terms.buyNowPrice !== undefined && (terms.buyNowPrice < terms.startPrice || terms.buyNowPrice < reservePrice)) {
    throw AppError.invalid('/buyNowPrice', 'must be at least the start and reserve prices');
  }
  const rule = terms.increment;
  if (rule.type === 'tiered') {
    if (rule.tiers[0]!.from !== 0) throw AppError.invalid('/increment/tiers/0/from', 'must be 0');
    for (let i = 1; i < rule.tiers.length; i++) {
      if (rule.tiers[i]!.from <= rule.tiers[i - 1]!.from) throw AppError.invalid(`/increment/tiers/${i}/from`, 'must be above the previous tier');
    }
  }
  const promoter = terms.promoter;
  if (promoter && promoter.maxIntervalSeconds < promoter.minIntervalSeconds) {
    throw AppError.invalid('/promoter/maxIntervalSeconds', 'must not be below minIntervalSeconds');
  }
  return { startsAt, endsAt, hardCloseAt, reservePrice };
}

/** The rule as the scripts read it (see increment() in lua/includes/auctionBook.lua). */
export function encodeRule(rule: IncrementRule): string {
  if (rule.type === 'absolute') return `abs:${rule.amount}`;
  if (rule.type === 'percentage') return `pct:${rule.basisPoints}`;
  return 'tier:' + rule.tiers.map((tier) => `${tier.from}:${tier.increment}`).join(',');
}

/** The smallest raise over `price` (mirrors increment() in auctionBook.lua; test/lua/auction-scripts.test.ts checks they agree on many rule and price pairs). */
export function incrementOf(rule: IncrementRule, price: number): number {
  if (rule.type === 'absolute') return rule.amount;
  if (rule.type === 'percentage') return Math.max(1, Math.ceil((price * rule.basisPoints) / 10_000));
  let increment = 1;
  for (const tier of rule.tiers) {
    if (price >= tier.from) increment = tier.increment;
    else break;
  }
  return increment;
}

/** The anonymous handle a bidder is shown as (same as handleOf() in auctionBook.lua). */
export const handleOf = (salt: string, buyerId: string): string =>
  'bidder-' + createHash('sha1').update(`${salt}:${buyerId}`).digest('hex').slice(0, 8);

/** A random moment in the promoter's interval after `from`. */
export function nextPromotionAt(promoter: PromoterSettings, from: number, random: () => number = Math.random): number {
  const span = (promoter.maxIntervalSeconds - promoter.minIntervalSeconds) * 1000;
  return from + promoter.minIntervalSeconds * 1000 + Math.floor(random() * span);
}
