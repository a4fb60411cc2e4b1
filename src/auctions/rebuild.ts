/**
 * `stampede rebuild auction <id>`: rebuilds an auction's live Redis state
 * from Postgres, the system of record: its terms (the `auctions` row) and
 * its event log (`auction_events`, replayed in seq order). The result is
 * exactly what the scripts had written: the auction hash (terms, status,
 * endsAt after extensions, price, leader, leaderBid, the book's top two,
 * bidCount, seq, closedAt, closeReason), the bids hash, the book, the standing bids, the
 * history and each bidder's `mine:<buyer>` set (encodings: see
 * lua/includes/auctionBook.lua).
 *
 * Price, leader and leaderBid are taken from the events' snapshots (every
 * bid, retraction, doubling and close carries them), so the pricing rules
 * live in Lua only. The replay checks what it can against the events (a
 * retraction's fallback bid, the bid each event names) and stops rather
 * than write a state that diverged.
 *
 * Refused: a log with a gap in seq, an auction closed or cancelled in
 * Postgres whose log lacks that event, and (unless forced) a live state in
 * Redis that is ahead of the log (its events are not settled yet, and a
 * rebuild would forget them).
 *
 * Not rebuilt: the bidders' rate-limit counters and idempotency records
 * (short-lived; a retried bid whose record is gone is decided afresh), and
 * the outbox's content: the stream and its relay group are made sure to
 * exist, nothing is replayed into it.
 */
import type { Redis } from 'ioredis';
import type { Pool, PoolClient } from '../platform/db/pool.js';
import { AUCTION_DEADLINES, auctionKeys } from './keys.js';
import { scanKeys, unwatch } from '../platform/redis/client.js';
import { OUTBOX_REGISTRY, RELAY_GROUP } from '../platform/messaging/outbox.js';
import { readLiveAuction, type AuctionTerms } from './scripts.js';
import { bookMemberOf, bookTopOf, encodeStoredBid, type StoredBid } from './codec.js';
import { findAuction, loggedEvents, type LoggedEvent } from './repository.js';
import { termsOf } from './auctions.js';

export class RebuildRefusedError extends Error {}

/** An auction's live state as Redis holds it, key by key. */
export interface AuctionState {
  auction: Record<string, string>;
  bids: Record<string, string>;
  book: { member: string; score: number }[];
  standing: Record<string, string>;
  history: { bidId: string; seq: number }[];
  mine: Record<string, { bidId: string; seq: number }[]>;
}

/** Replays the log over the terms (pure: no I/O). Throws RebuildRefusedError on a gap or a divergence. */
export function replayAuction(terms: AuctionTerms, events: LoggedEvent[]): AuctionState {
  const refuse = (why: string) => new RebuildRefusedError(`auction ${terms.id}: ${why}`);
  events.forEach((e, i) => {
    if (e.seq !== i + 1) throw refuse(`its log has a gap: seq ${i + 1} is missing (events may still be on their way to Postgres; retry once the queues are drained)`);
  });
  const hash: Record<string, string> = {
    id: terms.id, status: 'open', startsAt: String(terms.startsAt), endsAt: String(terms.endsAt), hardCloseAt: String(terms.hardCloseAt),
    softCloseMs: String(terms.softCloseMs), currency: terms.currency, startPrice: String(terms.startPrice), reserve: String(terms.reservePrice),
    buyNow: String(terms.buyNowPrice ?? 0), rule: terms.rule, salt: terms.salt, promoter: terms.promoter ? '1' : '0',
    price: '', leader: '', leaderBid: '', top: '', bidCount: '0', seq: '0', closedAt: '', closeReason: '',
  };
  const bids = new Map<string, StoredBid>();
  const standing = new Map<string, string>();
  const mine = new Map<string, { bidId: string; seq: number }[]>();
  let bidCount = 0;

  for (const { seq, type, payload } of events) {
    const at = (what: string) => refuse(`replay diverged at seq ${seq} (${type}): ${what}`);
    const known = (bidId: unknown): StoredBid => {
      const bid = bids.get(String(bidId));
      if (!bid || bid.buyerId !== payload.buyerId) throw at(`bid ${String(bidId)} of ${String(payload.buyerId)} is unknown`);
      return bid;
    };
    switch (type) {
      case 'bid_placed': {
        const buyerId = String(payload.buyerId);
        const prev = standing.has(buyerId) ? bids.get(standing.get(buyerId)!) : undefined;
        const bid: StoredBid = {
          bidId: String(payload.bidId), buyerId, amount: Number(payload.amount), maxAmount: Number(payload.maxAmount), seq, status: 'active',
          placedAt: Number(payload.placedAt), bonus: prev?.bonus ?? 0,
        };
        if (bids.has(bid.bidId)) throw at(`bid ${bid.bidId} placed twice`);
        bids.set(bid.bidId, bid);
        standing.set(buyerId, bid.bidId);
        mine.set(buyerId, [...(mine.get(buyerId) ?? []), { bidId: bid.bidId, seq }]);
        bidCount += 1;
        break;
      }
      case 'bid_retracted': {
        const bid = known(payload.bidId);
        bid.status = 'retracted';
        let fallback = '';
        if (standing.get(bid.buyerId) === bid.bidId) {
          standing.delete(bid.buyerId);
          // The bidder's most recent bid still active becomes standing (retractBid-6.lua).
          const next = [...(mine.get(bid.buyerId) ?? [])].sort((x, y) => y.seq - x.seq).find((entry) => bids.get(entry.bidId)!.status === 'active');
          if (next) {
            standing.set(bid.buyerId, next.bidId);
            fallback = next.bidId;
          }
        }
        if (fallback !== String(payload.fallbackBid ?? '')) throw at(`fallback bid ${fallback || 'none'}, the event says ${String(payload.fallbackBid) || 'none'}`);
        bidCount -= 1;
        break;
      }
      case 'bid_doubled': {
        const bid = known(payload.bidId);
        if (standing.get(bid.buyerId) !== bid.bidId || bid.status !== 'active') throw at(`bid ${bid.bidId} is not standing`);
        bid.amount = Number(payload.amount);
        bid.maxAmount = Number(payload.maxAmount);
        bid.bonus = Number(payload.bonus);
        break;
      }
      case 'extended':
        hash.endsAt = String(payload.endsAt);
        break;
      case 'closed':
        hash.status = 'closed';
        hash.closedAt = String(payload.closedAt);
        hash.closeReason = String(payload.reason);
        if (payload.reason === 'buy_now') hash.endsAt = String(payload.closedAt);
        break;
      case 'cancelled':
        hash.status = 'cancelled';
        hash.closedAt = String(payload.cancelledAt);
        hash.closeReason = 'cancelled';
        break;
      default:
        throw at('unknown event type');
    }
    if (type === 'bid_placed' || type === 'bid_retracted' || type === 'bid_doubled' || type === 'closed') {
      hash.price = payload.price === null || payload.price === undefined ? '' : String(payload.price);
      hash.leader = String(payload.leader ?? '');
      hash.leaderBid = String(payload.leaderBid ?? '');
    }
  }
  hash.bidCount = String(bidCount);
  hash.seq = String(events.length);
  const standingBids = [...standing.values()].map((id) => bids.get(id)!);
  hash.top = bookTopOf(standingBids);

  const stored = [...bids.values()];
  return {
    auction: hash,
    bids: Object.fromEntries(stored.map((b) => [b.bidId, encodeStoredBid(b)])),
    book: standingBids.map((b) => ({ member: bookMemberOf(b), score: b.maxAmount })),
    standing: Object.fromEntries(standing),
    history: stored.map((b) => ({ bidId: b.bidId, seq: b.seq })),
    mine: Object.fromEntries(mine),
  };
}

export interface RebuildResult {
  auctionId: string;
  status: string;
  seq: number;
  bids: number;
  standing: number;
  endsAt: number;
}

export interface RebuildOptions {
  /** Rebuild even when Redis is ahead of the log (its newest events are lost). */
  force?: boolean;
  /**
   * WATCH the auction's hash from before anything is read, so the rebuild is
   * written only if no script touched the auction meanwhile (every script
   * that changes an auction writes its hash: seq, bidCount, price…);
   * otherwise nothing is written and it is refused. `redis` must then be a
   * connection of the caller's own (WATCH belongs to the connection).
   */
  watch?: boolean;
}

/** Rebuilds one auction's Redis state from Postgres, atomically (one MULTI on the auction's slot). */
export async function rebuildAuction(pool: Pool | PoolClient, redis: Redis, auctionId: string, options: RebuildOptions = {}): Promise<RebuildResult> {
  if (!options.watch) return rebuildUnwatched(pool, redis, auctionId, options);
  await redis.watch(auctionKeys.auction(auctionId));
  try {
    return await rebuildUnwatched(pool, redis, auctionId, options);
  } finally {
    // EXEC ends the WATCH; a refusal before it must end it too.
    await unwatch(redis);
  }
}

async function rebuildUnwatched(pool: Pool | PoolClient, redis: Redis, auctionId: string, options: RebuildOptions): Promise<RebuildResult> {
  const auction = await findAuction(pool, auctionId);
  if (!auction) throw new RebuildRefusedError(`auction ${auctionId} is unknown to Postgres`);
  // The replay starts from the terms of an open auction; the log says whether and how it ended.
  const terms: AuctionTerms = { ...termsOf(auction), status: 'open' };
  const events = await loggedEvents(pool, auctionId);
  const state = replayAuction(terms, events);
  if (auction.status !== 'open' && state.auction.status !== auction.status) {
    throw new RebuildRefusedError(`auction ${auctionId} is ${auction.status} in Postgres but its log has no ${auction.status === 'closed' ? 'close' : 'cancellation'}`);
  }
  const live = await readLiveAuction(redis, auctionId);
  if (live && live.seq > events.length && !options.force) {
    throw new RebuildRefusedError(
      `auction ${auctionId}: Redis is ahead of the log (seq ${live.seq} live, ${events.length} logged); a rebuild would forget ${live.seq - events.length} events. ` +
        'Wait for the relay and workers to settle them, or pass --force',
    );
  }

  const stale = await scanKeys(redis, auctionKeys.mine(auctionId, '*'));

  const multi = redis.multi();
  multi.del(auctionKeys.auction(auctionId), auctionKeys.bids(auctionId), auctionKeys.book(auctionId), auctionKeys.standing(auctionId), auctionKeys.history(auctionId), ...stale,
    ...Object.keys(state.mine).map((b) => auctionKeys.mine(auctionId, b)));
  multi.hset(auctionKeys.auction(auctionId), state.auction);
  if (state.history.length > 0) {
    multi.hset(auctionKeys.bids(auctionId), state.bids);
    multi.zadd(auctionKeys.history(auctionId), ...state.history.flatMap((h) => [h.seq, h.bidId]));
    for (const [buyer, list] of Object.entries(state.mine)) multi.zadd(auctionKeys.mine(auctionId, buyer), ...list.flatMap((h) => [h.seq, h.bidId]));
  }
  if (state.book.length > 0) {
    multi.zadd(auctionKeys.book(auctionId), ...state.book.flatMap((b) => [b.score, b.member]));
    multi.hset(auctionKeys.standing(auctionId), state.standing);
  }
  const replies = await multi.exec();
  // null: a WATCHed key changed (options.watch), and nothing was written.
  if (replies === null) throw new RebuildRefusedError(`auction ${auctionId} changed while it was rebuilt; nothing was written`);
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0]!;

  // The outbox keeps what it holds: only its stream and the relay's group must exist.
  await redis.xgroup('CREATE', auctionKeys.outbox(auctionId), RELAY_GROUP, '0', 'MKSTREAM').catch((err: Error) => {
    if (!/BUSYGROUP/.test(err.message)) throw err;
  });
  await redis.sadd(OUTBOX_REGISTRY, auctionKeys.outbox(auctionId));
  // The scheduler's hint (another slot, so outside the MULTI): an open auction is closed when due.
  if (state.auction.status === 'open') await redis.zadd(AUCTION_DEADLINES, Number(state.auction.endsAt), auctionId);

  return {
    auctionId, status: state.auction.status!, seq: events.length, bids: state.history.length, standing: state.book.length,
    endsAt: Number(state.auction.endsAt),
  };
}
