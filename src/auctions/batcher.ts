/**
 * Decides one bid, batched: the bids a process places on the same auction
 * in one event-loop turn go to Redis as one placeBids call, decided in the
 * order they were placed, each exactly as if alone
 * (src/platform/redis/turn-batches.ts). What they share (the auction hash,
 * the clock, the live update) is then read and written once per call
 * instead of once per bid.
 */
import type { Redis } from 'ioredis';
import { TurnBatches } from '../platform/redis/turn-batches.js';
import { placeBids, type BidOutcome, type BidRequest } from './scripts.js';

/** The most bids one placeBids call decides: a call holds Redis for every bid in it, so a larger batch delays every other caller. */
export const MAX_BIDS_PER_CALL = 32;

const bidsInTurn = new TurnBatches<BidRequest, BidOutcome>(MAX_BIDS_PER_CALL, placeBids);

export function placeBid(redis: Redis, request: BidRequest): Promise<BidOutcome> {
  return bidsInTurn.add(redis, request.auctionId, request);
}
