/**
 * Decides one bid, batched: the bids a process places on the same auction
 * in one event-loop turn (uWS hands it every request that arrived) go to
 * Redis as one placeBids call, decided in the order they were placed, each
 * exactly as if alone. What they share (the auction hash, the clock, the
 * live update) is then read and written once per call instead of once per
 * bid.
 */
import type { Redis } from 'ioredis';
import { placeBids, type BidOutcome, type BidRequest } from './scripts.js';

/** The most bids one placeBids call decides: a call holds Redis for every bid in it, so a larger batch delays every other caller. */
export const MAX_BIDS_PER_CALL = 32;

interface PendingBid {
  request: BidRequest;
  resolve: (outcome: BidOutcome) => void;
  reject: (err: unknown) => void;
}

/** Bids waiting for this event-loop turn to end, per client, per auction. */
const pendingBids = new WeakMap<Redis, Map<string, PendingBid[]>>();

export function placeBid(redis: Redis, request: BidRequest): Promise<BidOutcome> {
  return new Promise((resolve, reject) => {
    let byAuction = pendingBids.get(redis);
    if (!byAuction) {
      byAuction = new Map();
      pendingBids.set(redis, byAuction);
    }
    if (byAuction.size === 0) setImmediate(flush, redis);
    let queue = byAuction.get(request.auctionId);
    if (!queue) {
      queue = [];
      byAuction.set(request.auctionId, queue);
    }
    queue.push({ request, resolve, reject });
  });
}

function flush(redis: Redis): void {
  const byAuction = pendingBids.get(redis)!;
  pendingBids.set(redis, new Map());
  for (const [auctionId, queue] of byAuction) {
    for (let i = 0; i < queue.length; i += MAX_BIDS_PER_CALL) send(redis, auctionId, queue.slice(i, i + MAX_BIDS_PER_CALL));
  }
}

function send(redis: Redis, auctionId: string, batch: PendingBid[]): void {
  placeBids(redis, auctionId, batch.map((pending) => pending.request)).then(
    (results) => {
      batch.forEach((pending, i) => {
        const result = results[i]!;
        if (result.status === 'fulfilled') pending.resolve(result.value);
        else pending.reject(result.reason);
      });
    },
    (err: unknown) => {
      for (const pending of batch) pending.reject(err);
    },
  );
}
