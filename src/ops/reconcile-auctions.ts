/**
 * Reconciling one auction: its live state in Redis against its event log in
 * Postgres, replayed as `stampede rebuild auction` replays it
 * (src/auctions/rebuild.ts). Every event an auction script writes carries
 * the next `seq`, and the log is keyed by it, so the two are comparable
 * exactly when Redis' seq equals the log's length:
 *
 *   - Redis ahead (seq > logged events): its newest events are on their way
 *     to Postgres (outbox, relay, queue). Not a finding: the outbox lag
 *     metrics say when that takes too long;
 *   - equal: status, end, price, leader, leading bid, the book's top two and
 *     the bid count must be what the replay gives;
 *   - Redis behind (seq < logged events), or an open auction Redis lost with
 *     a log: Redis lost events the log has.
 *
 * The repair is the rebuild, with the auction's hash WATCHed from before
 * anything is read: it is written only if no script touched the auction
 * meanwhile, so it holds exactly the events the log holds and no bid can be
 * lost to it. A Redis that is behind is rebuilt only when every bid it holds
 * is in the log (its events are a part of the log's, not others).
 */
import type { PoolClient } from '../platform/db/pool.js';
import type { Redis } from '../platform/redis/client.js';
import { auctionKeys } from '../auctions/keys.js';
import { termsOf } from '../auctions/auctions.js';
import { loggedEvents, type AuctionRecord } from '../auctions/repository.js';
import { rebuildAuction, RebuildRefusedError, replayAuction, type AuctionState } from '../auctions/rebuild.js';
import type { Finding } from './findings.js';

/** The fields of the auction hash the replay must reproduce. */
const COMPARED = ['status', 'endsAt', 'price', 'leader', 'leaderBid', 'top', 'bidCount', 'closedAt', 'closeReason'] as const;

export async function reconcileAuction(db: PoolClient, redis: Redis, auction: AuctionRecord): Promise<Finding[]> {
  const id = auction.id;
  // The log first, then Redis: the log only ever catches up with Redis, so read in this order Redis is never seen behind a log it wrote.
  const events = await loggedEvents(db, id);
  const live = await redis.hgetall(auctionKeys.auction(id));
  const seq = live.id ? Number(live.seq) : 0;
  if (live.id && seq > events.length) return [];
  let expected: AuctionState;
  try {
    expected = replayAuction({ ...termsOf(auction), status: 'open' }, events);
  } catch (err) {
    if (!(err instanceof RebuildRefusedError)) throw err;
    return [{ check: 'auctions', subject: id, code: 'log_unreplayable', message: err.message, details: { loggedEvents: events.length, redisSeq: seq }, repaired: false, action: 'none: the log itself must be looked at' }];
  }
  const finding = (code: string, message: string, details: Record<string, unknown>) => ({ check: 'auctions' as const, subject: id, code, message: `auction ${id}: ${message}`, details });

  if (!live.id) {
    // Redis not knowing a closed auction loses nothing (its record is Postgres'); an open one is loaded again on first use without its bids.
    if (auction.status !== 'open' || events.length === 0) return [];
    return [await repaired(db, redis, id, finding('lost_from_redis', `open with ${events.length} logged events, unknown to Redis`, { loggedEvents: events.length }))];
  }
  if (seq < events.length) {
    const bids = await redis.hkeys(auctionKeys.bids(id));
    const unknown = bids.filter((bidId) => !(bidId in expected.bids));
    const f = finding('behind_log', `Redis is at seq ${seq}, the log at ${events.length}`, { redisSeq: seq, loggedEvents: events.length, bidsNotLogged: unknown.length });
    if (unknown.length > 0) return [{ ...f, repaired: false, action: `none: Redis holds ${unknown.length} bid(s) the log does not (${unknown.slice(0, 5).join(', ')}); a rebuild would drop them` }];
    return [await repaired(db, redis, id, f)];
  }
  const differ = COMPARED.filter((field) => (live[field] ?? '') !== (expected.auction[field] ?? ''));
  if (differ.length === 0) return [];
  return [await repaired(db, redis, id, finding('state_differs', `Redis differs from its event log (${differ.join(', ')})`,
    Object.fromEntries(differ.map((field) => [field, { redis: live[field] ?? null, log: expected.auction[field] ?? null }]))))];
}

async function repaired(db: PoolClient, redis: Redis, auctionId: string, f: Omit<Finding, 'repaired' | 'action'>): Promise<Finding> {
  try {
    const result = await rebuildAuction(db, redis, auctionId, { watch: true });
    return { ...f, repaired: true, action: `rebuilt from the event log (seq ${result.seq}, ${result.bids} bids), as stampede rebuild auction does` };
  } catch (err) {
    if (!(err instanceof RebuildRefusedError)) throw err;
    return { ...f, repaired: false, action: `not repaired: ${err.message}` };
  }
}
