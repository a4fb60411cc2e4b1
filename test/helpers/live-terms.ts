/**
 * Sales and auctions loaded straight into Redis (no Postgres row), and the
 * requests their scripts take, for the tests that call the script wrappers
 * directly (test/lua/, test/faults/script-failure.test.ts). Every field has
 * a default a test overrides when it matters.
 */
import type { Redis } from '../../src/platform/redis/client.js';
import { newAuctionId, newBidId, newPurchaseId, newSaleId } from '../../src/platform/ids.js';
import { loadSale, type ReserveRequest, type SaleTerms } from '../../src/sales/scripts.js';
import { loadAuction, type AuctionTerms, type BidRequest } from '../../src/auctions/scripts.js';

/** An open sale of 3 units, 2 per buyer, loaded into Redis. */
export async function liveSale(redis: Redis, over: Partial<SaleTerms> = {}): Promise<SaleTerms> {
  const now = Date.now();
  const s: SaleTerms = {
    id: newSaleId(), status: 'open', startsAt: now - 60_000, endsAt: now + 60_000, perBuyerLimit: 2,
    unitPrice: 500, currency: 'EUR', stock: 3, ...over,
  };
  await loadSale(redis, s, 0);
  return s;
}

/** A purchase of one unit by `buyerId`, with a fresh purchase id. */
export const reserveRequest = (s: SaleTerms, buyerId: string, over: Partial<ReserveRequest> = {}): ReserveRequest => ({
  saleId: s.id, buyerId, quantity: 1, purchaseId: newPurchaseId(s.id), rateMax: 100, rateWindowMs: 1000,
  idempotencyTtlMs: 60_000, ...over,
});

/** An open auction (start 1000, increments of 100, 10 s soft close), loaded into Redis. */
export async function liveAuction(redis: Redis, over: Partial<AuctionTerms> = {}): Promise<AuctionTerms> {
  const now = Date.now();
  const a: AuctionTerms = {
    id: newAuctionId(), status: 'open', startsAt: now - 60_000, endsAt: now + 600_000, hardCloseAt: now + 1_200_000, softCloseMs: 10_000,
    currency: 'EUR', startPrice: 1000, reservePrice: 0, buyNowPrice: null, rule: 'abs:100', salt: 'salt', promoter: false, ...over,
  };
  await loadAuction(redis, a);
  return a;
}

/** A bid of `amount` by `buyerId`, with a fresh bid id. */
export const bidRequest = (a: AuctionTerms, buyerId: string, amount: number, over: Partial<BidRequest> = {}): BidRequest => ({
  auctionId: a.id, buyerId, amount, bidId: newBidId(a.id), rateMax: 1000, rateWindowMs: 1000, idempotencyTtlMs: 60_000, ...over,
});
