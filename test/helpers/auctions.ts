/**
 * Auctions for tests: a row in `auctions` (as the auctions api would write
 * it), its live state loaded into Redis with the real script, its outbox
 * registered for the relay; bids and closes through the real scripts; and
 * probes of what settlement wrote. Nothing here is a mock.
 */
import { Outcome } from '../../src/platform/redis/outcomes.js';
import type { Pool } from '../../src/platform/db/pool.js';
import type { Redis } from '../../src/platform/redis/client.js';
import { newAuctionId, newBidId } from '../../src/platform/ids.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { OUTBOX_REGISTRY } from '../../src/platform/messaging/outbox.js';
import {
  closeAuction, loadAuction, readLiveAuction, type AuctionTerms, type CloseOutcome,
} from '../../src/auctions/scripts.js';
import { placeBid } from '../../src/auctions/batcher.js';
import { encodeRule, type IncrementRule } from '../../src/auctions/rules.js';
import type { GetMessage } from 'amqplib';
import { ANNOUNCEMENT_SOURCE } from '../../src/auctions/announcements.js';
import { sleep, waitFor } from './system.js';

export interface TestAuction extends AuctionTerms {
  incrementRule: IncrementRule;
}

export async function createAuction(pool: Pool, redis: Redis, over: Partial<Omit<TestAuction, 'rule'>> = {}): Promise<TestAuction> {
  const now = Date.now();
  const incrementRule = over.incrementRule ?? { type: 'absolute', amount: 100 };
  const a: TestAuction = {
    id: newAuctionId(), status: 'open', startsAt: now - 60_000, endsAt: now + 600_000, hardCloseAt: now + 1_200_000, softCloseMs: 0,
    currency: 'EUR', startPrice: 1000, reservePrice: 0, buyNowPrice: null, salt: 'test-salt', promoter: false, ...over,
    incrementRule, rule: encodeRule(incrementRule),
  };
  await pool.query(
    `INSERT INTO auctions (id, title, currency, start_price, reserve_price, buy_now_price, increment_rule, soft_close_ms,
                           starts_at, ends_at, hard_close_at, promoter, handle_salt)
     VALUES ($1, 'Test lot', $2, $3, $4, $5, $6, $7, to_timestamp($8 / 1000.0), to_timestamp($9 / 1000.0), to_timestamp($10 / 1000.0), $11, $12)`,
    [a.id, a.currency, a.startPrice, a.reservePrice, a.buyNowPrice, JSON.stringify(incrementRule), a.softCloseMs, a.startsAt, a.endsAt, a.hardCloseAt,
      a.promoter ? JSON.stringify({ enabled: true, minIntervalSeconds: 1, maxIntervalSeconds: 2 }) : null, a.salt],
  );
  await loadAuction(redis, a);
  await redis.sadd(OUTBOX_REGISTRY, auctionKeys.outbox(a.id));
  return a;
}

/** Places a bid that must be accepted; returns its id. */
export async function bid(redis: Redis, a: AuctionTerms, buyerId: string, amount: number, maxAmount?: number): Promise<string> {
  const r = await placeBid(redis, {
    auctionId: a.id, buyerId, amount, maxAmount, bidId: newBidId(a.id), rateMax: 1_000_000, rateWindowMs: 1000, idempotencyTtlMs: 60_000,
  });
  if (r.code !== Outcome.Applied) throw new Error(`bid ${amount} by ${buyerId} refused: ${JSON.stringify(r)}`);
  return r.bidId;
}

/** Closes the auction by time as soon as its (possibly extended) end has passed. */
export async function closeWhenDue(redis: Redis, auctionId: string): Promise<CloseOutcome> {
  for (;;) {
    const r = await closeAuction(redis, auctionId, 'time');
    if (r.code !== Outcome.NotDue) return r;
    await sleep(Math.max(5, Math.min(200, r.endsAt - Date.now() + 2)));
  }
}

/** The auction row's settlement columns. */
export async function auctionRow(pool: Pool, auctionId: string): Promise<{ status: string; outcome: string | null; winner_id: string | null; final_price: number | null; house_bonus: number | null; closed: boolean; settled: boolean }> {
  const { rows } = await pool.query(
    `SELECT status, outcome, winner_id, final_price, house_bonus, closed_at IS NOT NULL AS closed, settled_at IS NOT NULL AS settled FROM auctions WHERE id = $1`,
    [auctionId],
  );
  return rows[0];
}

export async function offersOf(pool: Pool, auctionId: string): Promise<[number, string, number, number, string][]> {
  const { rows } = await pool.query<{ rank: number; buyer_id: string; price: number; bonus: number; result: string }>(
    'SELECT rank, buyer_id, price, bonus, result FROM auction_offers WHERE auction_id = $1 ORDER BY rank',
    [auctionId],
  );
  return rows.map((r) => [r.rank, r.buyer_id, r.price, r.bonus, r.result]);
}

/** The auction's ledger entries: [ref, user, amount, kind]. */
export async function auctionLedger(pool: Pool, auctionId: string): Promise<[string, string, number, string][]> {
  const { rows } = await pool.query<{ ref: string; user_id: string; amount: number; kind: string }>(
    `SELECT ref, user_id, amount, kind FROM ledger_entries WHERE ref LIKE $1 ORDER BY ref`,
    [`auction:${auctionId}:%`],
  );
  return rows.map((r) => [r.ref, r.user_id, r.amount, r.kind]);
}

export async function balanceOf(pool: Pool, userId: string, currency = 'EUR'): Promise<number | undefined> {
  const { rows } = await pool.query<{ balance: number }>('SELECT balance FROM wallets WHERE user_id = $1 AND currency = $2', [userId, currency]);
  return rows[0]?.balance;
}

/** Highest seq of the auction in the Postgres log, and how many rows it has. */
export async function logged(pool: Pool, auctionId: string): Promise<{ seq: number; rows: number }> {
  const { rows } = await pool.query<{ seq: number; rows: number }>(
    'SELECT coalesce(max(seq), 0)::int AS seq, count(*)::int AS rows FROM auction_events WHERE auction_id = $1',
    [auctionId],
  );
  return rows[0]!;
}

/** Waits until the Postgres log holds every event Redis decided (seq in Postgres == seq in Redis). */
export async function waitLogged(pool: Pool, redis: Redis, auctionId: string, timeoutMs = 30_000): Promise<number> {
  return waitFor(`auction ${auctionId} fully logged`, async () => {
    const live = await readLiveAuction(redis, auctionId);
    const log = await logged(pool, auctionId);
    return live !== undefined && log.seq === live.seq && log.rows === live.seq ? live.seq : undefined;
  }, timeoutMs);
}

export async function waitSettled(pool: Pool, auctionId: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(`auction ${auctionId} settled`, async () => {
    const r = await auctionRow(pool, auctionId);
    return r.outcome !== null || r.status === 'cancelled';
  }, timeoutMs);
}

/**
 * Workers that leave the notifications queue alone: tests that read the
 * announcements off it themselves run no notifications worker beside them.
 */
export const ANNOUNCEMENTS_UNCONSUMED: NodeJS.ProcessEnv = { STAMPEDE_WORKER_QUEUES: 'orders,auctions' };

export interface Announcement {
  id: string;
  source: string;
  type: string;
  routingKey: string;
  messageId: string | undefined;
  data: Record<string, unknown>;
  body: string;
}

/**
 * The announcements a message carries: one, or a CloudEvents batch (workers
 * send theirs batched). An event's `messageId` is the id a consumer knows it
 * by: the message's for a lone event, the event's own inside a batch.
 */
export const announcementsOf = (m: GetMessage): Announcement[] => {
  const parsed = JSON.parse(m.content.toString());
  const batch = Array.isArray(parsed);
  return (batch ? parsed : [parsed]).map((ev: { id: string; source: string; type: string; data: Record<string, unknown> }) => ({
    id: ev.id, source: ev.source, type: ev.type, routingKey: m.fields.routingKey, messageId: batch ? ev.id : m.properties.messageId, data: ev.data, body: JSON.stringify(ev),
  }));
};

/**
 * Takes announcements of one auction off the notifications queue (acking
 * them) until every expected id has been seen; outbid events and other
 * auctions' messages are taken and dropped, and so are identical copies
 * (announcements are at-least-once; see src/auctions/auctions-worker.ts).
 */
const OUTBID = 'stampede.auction.outbid.v1';

export async function collectAnnouncements(
  ch: import('amqplib').Channel, queue: string, auctionId: string, expectedIds: string[], timeoutMs = 20_000,
): Promise<Announcement[]> {
  const got: Announcement[] = [];
  const deadline = Date.now() + timeoutMs;
  const missing = () => expectedIds.filter((id) => !got.some((a) => a.id === id));
  while (missing().length > 0) {
    const m = await ch.get(queue, { noAck: false });
    if (!m) {
      if (Date.now() > deadline) throw new Error(`announcements missing: ${missing().join(', ')}; got ${got.map((a) => a.id).join(', ')}`);
      await sleep(20);
      continue;
    }
    ch.ack(m);
    for (const a of announcementsOf(m)) {
      if (a.source !== ANNOUNCEMENT_SOURCE || a.data.auctionId !== auctionId || (a.type === OUTBID && !expectedIds.includes(a.id))) continue;
      // Announcements are at-least-once (a batch retried, two lanes settling
      // the same auction): a consumer deduplicates by id, and so does this.
      // A copy must be the same announcement.
      const earlier = got.find((g) => g.id === a.id);
      if (!earlier) got.push(a);
      else if (JSON.stringify(earlier.data) !== JSON.stringify(a.data)) throw new Error(`announcement ${a.id} sent twice with different data`);
    }
  }
  return got;
}
