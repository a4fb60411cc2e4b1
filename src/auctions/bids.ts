/**
 * Bids: placed and retracted by their bidders (decided by one Lua call each,
 * see lua/auction), read back as the auction's history, retracted all at
 * once when an operator deletes a buyer, and offered to the promoter.
 */
import type { Redis } from 'ioredis';
import { AppError } from '../platform/errors.js';
import { newBidId } from '../platform/ids.js';
import { Outcome, refusalOf } from '../platform/redis/outcomes.js';
import { auctionKeys } from './keys.js';
import { placeBid } from './batcher.js';
import { retractBid } from './scripts.js';
import { parseStoredBid, type StoredBid } from './codec.js';
import { handleOf } from './rules.js';
import { unknownAuction, type Auctions } from './auctions.js';
import type { OutcomeTally } from '../platform/redis/tally.js';

export interface BidLimits {
  rateMax: number;
  rateWindowMs: number;
  idempotencyTtlMs: number;
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

export interface RetractAnswer {
  bidId: string;
  status: 'retracted';
  currentPrice: number | null;
  endsAt: string;
}

export class Bids {
  constructor(
    private readonly redis: Redis,
    private readonly auctions: Auctions,
    private readonly limits: BidLimits,
    /** Counts each bid's decision by auction and outcome code, for the operators' live view. */
    private readonly tally?: OutcomeTally,
  ) {}

  async bid(buyerId: string, auctionId: string, amount: number, maxAmount: number | undefined, idempotencyKey: string | undefined): Promise<BidAnswer> {
    if (maxAmount !== undefined && maxAmount < amount) throw AppError.invalid('/maxAmount', 'must not be below amount');
    const request = {
      auctionId, buyerId, amount, maxAmount, bidId: newBidId(auctionId), idempotencyKey, fingerprint: `a=${amount};m=${maxAmount ?? ''}`,
      rateMax: this.limits.rateMax, rateWindowMs: this.limits.rateWindowMs, idempotencyTtlMs: this.limits.idempotencyTtlMs,
    };
    let out = await placeBid(this.redis, request);
    if (out.code === Outcome.NotFound && (await this.auctions.ensureLoaded(auctionId))) out = await placeBid(this.redis, request);
    this.tally?.count(auctionId, out.code);
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

  async retract(buyerId: string, auctionId: string, bidId: string): Promise<RetractAnswer> {
    if (!(await this.auctions.ensureLoaded(auctionId))) throw unknownAuction();
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

  /** Bid history, newest first, paged by sequence number; `mine` shows only (and fully) the caller's own bids. */
  async history(auctionId: string, limit: number, before: number | undefined, mine: string | undefined): Promise<{ items: BidView[]; next: number | null }> {
    const current = await this.auctions.find(auctionId);
    if (!current) throw unknownAuction();
    const index = mine ? auctionKeys.mine(auctionId, mine) : auctionKeys.history(auctionId);
    const ids = await this.redis.zrevrangebyscore(index, before === undefined ? '+inf' : `(${before}`, '-inf', 'LIMIT', 0, limit + 1);
    const page = ids.slice(0, limit);
    const items = (await this.stored(auctionId, page)).map((bid) => {
      const view: BidView = {
        bidId: bid.bidId, bidder: handleOf(current.auction.handleSalt, bid.buyerId), amount: bid.amount, status: bid.status, doubled: bid.bonus > 0,
        placedAt: new Date(bid.placedAt).toISOString(), seq: bid.seq,
      };
      if (mine) view.maxAmount = bid.maxAmount;
      return view;
    });
    return { items, next: ids.length > limit ? items[items.length - 1]!.seq : null };
  }

  /** Retracts every bid of a buyer in open auctions (an operator deleting the buyer). Returns how many. */
  async retractAllOf(buyerId: string): Promise<number> {
    let retracted = 0;
    for (const auctionId of await this.auctions.openIds()) {
      for (const bidId of await this.redis.zrevrange(auctionKeys.mine(auctionId, buyerId), 0, -1)) {
        const out = await retractBid(this.redis, auctionId, buyerId, bidId, true);
        if (out.code === Outcome.Applied) retracted++;
      }
    }
    return retracted;
  }

  /** Standing bids of bidders not yet lucky (the promoter's candidates). */
  async standingBids(auctionId: string): Promise<StoredBid[]> {
    const standing = await this.stored(auctionId, await this.redis.hvals(auctionKeys.standing(auctionId)));
    return standing.filter((bid) => bid.status === 'active' && bid.bonus === 0);
  }

  /** The bids of these ids that Redis holds, in the same order. */
  private async stored(auctionId: string, bidIds: string[]): Promise<StoredBid[]> {
    if (bidIds.length === 0) return [];
    const stored = await this.redis.hmget(auctionKeys.bids(auctionId), ...bidIds);
    return bidIds.flatMap((bidId, i) => (stored[i] ? [parseStoredBid(bidId, stored[i]!)] : []));
  }
}
