/**
 * The bid-war phase of `npm run bench`: every bidder on ONE hot auction.
 * Each request bids one increment above the last amount sent, so arrivals
 * overtake one another as in a real war: the later-sent higher bids win, the
 * overtaken ones get BID_TOO_LOW. After the run, the auction's invariant:
 * the leader holds the highest accepted bid (earliest among equals), the
 * price is that bid, and every 202 is one stored bid.
 */
import autocannon from 'autocannon';
import type { Redis } from 'ioredis';
import { auctionKeys } from '../../src/auctions/keys.js';
import { parseStoredBid } from '../../src/auctions/codec.js';
import { resultOf, type LoadResult } from './results.js';

export interface BidWarOptions {
  url: string;
  auctionId: string;
  tokens: string[];
  connections: number;
  durationS: number;
  startPrice: number;
  increment: number;
}

export async function runBidWar(redis: Redis, o: BidWarOptions): Promise<LoadResult> {
  let i = 0;
  let amount = o.startPrice;
  const path = `/v1/auctions/${o.auctionId}/bids`;
  const r = await autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    duration: o.durationS,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (req: any) => {
          const token = o.tokens[i++ % o.tokens.length]!;
          const body = `{"amount":${amount}}`;
          amount += o.increment;
          return { ...req, path, body, headers: { ...req.headers, authorization: `Bearer ${token}` } };
        },
      },
    ],
  } as autocannon.Options);
  return resultOf(r);
}

/**
 * The auction's invariants, read back from Redis once the api has stopped
 * (a duration-bound run leaves requests in flight at cut-off): the leader
 * holds the highest bid (the earliest among equals), the price is that bid,
 * the bid count matches, and every 202 is one stored bid.
 */
export async function auditBidWar(redis: Redis, auctionId: string, statuses: Record<string, number>, connections: number): Promise<{ violations: string[]; acceptedBids: number }> {
  const violations: string[] = [];
  const live = await redis.hgetall(auctionKeys.auction(auctionId));
  const bids = Object.entries(await redis.hgetall(auctionKeys.bids(auctionId))).map(([id, raw]) => parseStoredBid(id, raw));
  const active = bids.filter((b) => b.status === 'active');
  const accepted202 = statuses['202'] ?? 0;
  // A duration-bound run ends with up to one request per connection in flight.
  if (bids.length < accepted202 || bids.length > accepted202 + connections) {
    violations.push(`bid war: ${bids.length} stored bids for ${accepted202} answers 202`);
  }
  if (active.length > 0) {
    // A loop, not Math.max(...): a war of more than about 120,000 bids overflows the call stack as arguments.
    const top = active.reduce((m, b) => (b.maxAmount > m ? b.maxAmount : m), -Infinity);
    const leader = active.filter((b) => b.maxAmount === top).sort((a, b) => a.seq - b.seq)[0]!;
    if (live.leaderBid !== leader.bidId) violations.push(`bid war: leader ${live.leaderBid} is not the highest bid ${leader.bidId}`);
    if (Number(live.price) !== leader.amount) violations.push(`bid war: price ${live.price} is not the leading amount ${leader.amount}`);
    if (Number(live.bidCount) !== active.length) violations.push(`bid war: bidCount ${live.bidCount} vs ${active.length} stored`);
  }
  for (const code of Object.keys(statuses)) if (/^5|errors|timeouts/.test(code)) violations.push(`bid war: ${code} answers`);
  return { violations, acceptedBids: bids.length };
}
