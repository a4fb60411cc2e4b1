/**
 * Settles a batch of auction events in ONE Postgres transaction:
 *   - every event is appended to the auction's log (`auction_events`, keyed
 *     by its id `<auctionId>:<seq>`; a redelivered event changes nothing);
 *   - a `closed` event settles the auction exactly once: each bidder the
 *     event offers the lot to, in order, is tried until one can pay (a live
 *     buyer whose wallet in the auction's currency holds price - bonus); the
 *     winner's wallet is debited once (`auction:<id>:win`, -price) and the
 *     house's promoter bonus credited (`auction:<id>:promotion`); every
 *     attempt is an `auction_offers` row; the auction row gets its outcome.
 *     The settlement uses only the offers carried by the event, never the
 *     log, so it does not depend on earlier events having arrived;
 *   - a `cancelled` event marks the auction cancelled.
 * The auction rows of the batch are locked (in id order, so batches never
 * deadlock) before anything is written, and an auction whose outcome is
 * already set is never settled again: redelivery, and the same message on
 * two workers at once, settle it once. Wallets are locked in key order.
 *
 * It returns the announcements (won, offer_failed, lost, released), built
 * from what is stored, so a redelivered close announces again the very same
 * events with the very same ids (at-least-once, deduplicated by id).
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import { inTransaction } from '../platform/db/pool.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import {
  ANNOUNCEMENT_TYPES, type AuctionCancelledData, type AuctionLogEvent, type AuctionLostData, type AuctionOfferFailedData, type AuctionOutbidData, type AuctionWonData,
  type ClosedData,
} from './events.js';

export class UnknownAuctionError extends Error {}
export class ConcurrentAuctionSettlementError extends Error {}

/** The CloudEvent source of every announcement. */
export const ANNOUNCEMENT_SOURCE = 'stampede:auction-settlement';

interface AuctionRow {
  id: string;
  currency: string;
  status: 'open' | 'closed' | 'cancelled';
  outcome: 'sold' | 'unsold' | null;
  closed_at: Date | null;
}

export function settleAuctionEvents(pool: Pool, events: AuctionLogEvent[]): Promise<CloudEvent[]> {
  return inTransaction(pool, (c) => settleInTransaction(c, events));
}

async function settleInTransaction(c: PoolClient, all: AuctionLogEvent[]): Promise<CloudEvent[]> {
  const events = [...new Map(all.map((e) => [e.eventId, e])).values()];
  const auctionIds = [...new Set(events.map((e) => e.auctionId))].sort();
  // FOR UPDATE, not a weaker lock: it also waits for (and is waited for by)
  // the key-share lock another batch's log insert takes on the same auction,
  // so a late bid of a settling auction is seen by one side or the other.
  const { rows } = await c.query<AuctionRow>(
    'SELECT id, currency, status, outcome, closed_at FROM auctions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE',
    [auctionIds],
  );
  const before = new Map(rows.map((r) => [r.id, r]));
  const missing = auctionIds.filter((id) => !before.has(id));
  if (missing.length > 0) throw new UnknownAuctionError(`unknown auction ${missing.join(', ')}`);

  const inserted = await appendToLog(c, events);

  const closes = new Map<string, AuctionLogEvent & { type: 'closed' }>();
  const cancels = new Map<string, AuctionLogEvent & { type: 'cancelled' }>();
  for (const e of events) {
    if (e.type === 'closed') closes.set(e.auctionId, e);
    else if (e.type === 'cancelled') cancels.set(e.auctionId, e);
  }
  const toSettle = [...closes.values()].filter((e) => {
    const r = before.get(e.auctionId)!;
    return r.outcome === null && r.status !== 'cancelled';
  });
  if (toSettle.length > 0) await settleCloses(c, toSettle, before);
  for (const e of cancels.values()) {
    await c.query(
      `UPDATE auctions SET status = 'cancelled', closed_at = to_timestamp($2 / 1000.0) WHERE id = $1 AND status = 'open' AND outcome IS NULL`,
      [e.auctionId, e.data.cancelledAt],
    );
  }

  const out: CloudEvent[] = [];
  // A bid that took the lead: its previous leader is told (every delivery announces again, with the same id).
  for (const e of events) {
    if (e.type !== 'bid_placed' || e.data.outbid === undefined) continue;
    out.push(announcement<AuctionOutbidData>(ANNOUNCEMENT_TYPES.outbid, `${e.data.bidId}:outbid`, e.auctionId, new Date(e.data.placedAt), {
      auctionId: e.auctionId, buyerId: e.data.outbid, price: e.data.price, byBid: e.data.bidId,
    }));
  }
  for (const e of closes.values()) out.push(...(await closeAnnouncements(c, e.auctionId)));
  for (const e of cancels.values()) out.push(...(await cancelAnnouncements(c, e.auctionId, e.data.bidders)));
  // A bid logged only after its auction was settled (it was in a retry tier)
  // still gets its bidder told, with the same id the close would have used.
  const late = new Map<string, Set<string>>();
  for (const e of events) {
    const r = before.get(e.auctionId)!;
    if (e.type !== 'bid_placed' || !inserted.has(e.eventId) || closes.has(e.auctionId) || cancels.has(e.auctionId)) continue;
    if (r.outcome === null && r.status !== 'cancelled') continue;
    const buyers = late.get(e.auctionId) ?? new Set<string>();
    late.set(e.auctionId, buyers.add(e.data.buyerId));
  }
  for (const [auctionId, buyers] of late) {
    const r = before.get(auctionId)!;
    out.push(...(r.status === 'cancelled' ? await cancelAnnouncements(c, auctionId, [], buyers) : await closeAnnouncements(c, auctionId, buyers)));
  }
  return [...new Map(out.map((a) => [a.id, a])).values()];
}

/** Appends the events to the log; returns the ids written now (not already there). */
async function appendToLog(c: PoolClient, events: AuctionLogEvent[]): Promise<Set<string>> {
  const bidOf = (e: AuctionLogEvent): string | null =>
    e.type === 'bid_placed' || e.type === 'bid_retracted' || e.type === 'bid_doubled' ? e.data.bidId : e.type === 'extended' ? e.data.byBid : null;
  const buyerOf = (e: AuctionLogEvent): string | null =>
    e.type === 'bid_placed' || e.type === 'bid_retracted' || e.type === 'bid_doubled' ? e.data.buyerId : null;
  const { rows } = await c.query<{ event_id: string }>(
    `INSERT INTO auction_events (event_id, auction_id, seq, type, bid_id, buyer_id, payload, occurred_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::timestamptz[])
     ON CONFLICT DO NOTHING
     RETURNING event_id`,
    [
      events.map((e) => e.eventId), events.map((e) => e.auctionId), events.map((e) => e.seq), events.map((e) => e.type),
      events.map(bidOf), events.map(buyerOf), events.map((e) => JSON.stringify(e.data)), events.map((e) => new Date(e.time)),
    ],
  );
  return new Set(rows.map((r) => r.event_id));
}

interface Attempt {
  rank: number;
  buyerId: string;
  bidId: string;
  price: number;
  bonus: number;
  result: 'paid' | 'cannot_pay';
}

async function settleCloses(c: PoolClient, closes: (AuctionLogEvent & { type: 'closed' })[], auctions: Map<string, AuctionRow>): Promise<void> {
  const currencyOf = (e: { auctionId: string }) => auctions.get(e.auctionId)!.currency;
  const buyers = [...new Set(closes.flatMap((e) => e.data.offers.map((o) => o.buyerId)))];
  const walletKeys = [...new Set(closes.flatMap((e) => e.data.offers.map((o) => `${o.buyerId}|${currencyOf(e)}`)))].sort();
  const balances = new Map<string, number>();
  if (walletKeys.length > 0) {
    const { rows } = await c.query<{ user_id: string; currency: string; balance: number }>(
      `SELECT w.user_id, w.currency, w.balance FROM wallets w
         JOIN unnest($1::text[], $2::text[]) AS k(user_id, currency) ON w.user_id = k.user_id AND w.currency = k.currency
        ORDER BY w.user_id, w.currency FOR UPDATE OF w`,
      [walletKeys.map((k) => k.split('|')[0]), walletKeys.map((k) => k.split('|')[1])],
    );
    for (const r of rows) balances.set(`${r.user_id}|${r.currency}`, r.balance);
  }
  // A deleted buyer cannot pay, whatever their wallet holds.
  const { rows: live } = await c.query<{ id: string }>('SELECT id FROM users WHERE id = ANY($1::text[]) AND deleted_at IS NULL', [buyers]);
  const alive = new Set(live.map((r) => r.id));

  for (const e of closes) {
    const currency = currencyOf(e);
    const attempts = offerInTurn(e.data, (buyerId, net) => {
      const key = `${buyerId}|${currency}`;
      const balance = balances.get(key);
      if (!alive.has(buyerId) || balance === undefined || balance < net) return false;
      balances.set(key, balance - net);
      return true;
    });
    const winner = attempts.find((a) => a.result === 'paid');
    if (attempts.length > 0) {
      await c.query(
        `INSERT INTO auction_offers (auction_id, rank, buyer_id, bid_id, price, bonus, result)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])`,
        [e.auctionId, attempts.map((a) => a.rank), attempts.map((a) => a.buyerId), attempts.map((a) => a.bidId), attempts.map((a) => a.price),
          attempts.map((a) => a.bonus), attempts.map((a) => a.result)],
      );
    }
    let houseBonus: number | null = null;
    if (winner) {
      houseBonus = Math.min(winner.bonus, winner.price);
      const entries = [
        ...(houseBonus > 0 ? [{ ref: `auction:${e.auctionId}:promotion`, amount: houseBonus, kind: 'promotion' }] : []),
        { ref: `auction:${e.auctionId}:win`, amount: -winner.price, kind: 'auction' },
      ];
      const { rowCount } = await c.query(
        `INSERT INTO ledger_entries (ref, user_id, currency, amount, kind)
         SELECT r, $2, $3, a, k FROM unnest($1::text[], $4::bigint[], $5::text[]) AS t(r, a, k)
         ON CONFLICT (ref) DO NOTHING`,
        [entries.map((l) => l.ref), winner.buyerId, currency, entries.map((l) => l.amount), entries.map((l) => l.kind)],
      );
      if (rowCount !== entries.length) throw new ConcurrentAuctionSettlementError(`auction ${e.auctionId}: its ledger entries already exist`);
      // The CHECK (balance >= 0) is the last word, whatever was computed above.
      await c.query('UPDATE wallets SET balance = balance - $3, updated_at = now() WHERE user_id = $1 AND currency = $2', [
        winner.buyerId, currency, winner.price - houseBonus,
      ]);
    }
    const { rowCount } = await c.query(
      `UPDATE auctions SET status = 'closed', closed_at = to_timestamp($2 / 1000.0), outcome = $3, winner_id = $4, final_price = $5,
              house_bonus = $6, settled_at = now()
        WHERE id = $1 AND outcome IS NULL`,
      [e.auctionId, e.data.closedAt, winner ? 'sold' : 'unsold', winner?.buyerId ?? null, winner?.price ?? null, houseBonus],
    );
    if (rowCount !== 1) throw new ConcurrentAuctionSettlementError(`auction ${e.auctionId} was settled concurrently`);
  }
}

/**
 * Offers the lot to each bidder of the close in order until one pays:
 * `pay(buyer, net)` takes price - bonus from them, or says they cannot pay.
 */
export function offerInTurn(close: ClosedData, pay: (buyerId: string, net: number) => boolean): Attempt[] {
  const attempts: Attempt[] = [];
  for (const [i, o] of close.offers.entries()) {
    const paid = pay(o.buyerId, o.price - Math.min(o.bonus, o.price));
    attempts.push({ rank: i + 1, buyerId: o.buyerId, bidId: o.bidId, price: o.price, bonus: o.bonus, result: paid ? 'paid' : 'cannot_pay' });
    if (paid) break;
  }
  return attempts;
}

function announcement<T>(type: string, id: string, auctionId: string, time: Date, data: T): CloudEvent<T> {
  return { specversion: '1.0', id, source: ANNOUNCEMENT_SOURCE, type, time: time.toISOString(), subject: auctionId, datacontenttype: 'application/json', data };
}

/**
 * Everyone who bid on the auction, as far as the log knows: who placed a
 * bid, and who the close offered the lot to (which holds even when bids
 * are still on their way to the log).
 */
async function biddersOf(c: PoolClient, auctionId: string): Promise<string[]> {
  const { rows } = await c.query<{ buyer_id: string }>(
    `SELECT buyer_id FROM auction_events WHERE auction_id = $1 AND type = 'bid_placed' AND buyer_id IS NOT NULL
     UNION
     SELECT o ->> 'buyerId' FROM auction_events e, jsonb_array_elements(e.payload -> 'offers') AS o WHERE e.auction_id = $1 AND e.type = 'closed'
     ORDER BY 1`,
    [auctionId],
  );
  return rows.map((r) => r.buyer_id);
}

/**
 * The close's announcements, from what is stored: won to the winner,
 * offer_failed to each bidder who could not pay, lost to every other bidder
 * (from the log, and from the offers where the log is not complete yet).
 * With `only`, just the lost announcements of those bidders.
 */
async function closeAnnouncements(c: PoolClient, auctionId: string, only?: Set<string>): Promise<CloudEvent[]> {
  const { rows: [a] } = await c.query<{ currency: string; outcome: 'sold' | 'unsold' | null; winner_id: string | null; final_price: number | null; house_bonus: number | null; closed_at: Date | null }>(
    'SELECT currency, outcome, winner_id, final_price, house_bonus, closed_at FROM auctions WHERE id = $1',
    [auctionId],
  );
  if (!a || a.outcome === null || a.closed_at === null) return [];
  const { rows: offers } = await c.query<Attempt>(
    'SELECT rank, buyer_id AS "buyerId", bid_id AS "bidId", price, bonus, result FROM auction_offers WHERE auction_id = $1 ORDER BY rank',
    [auctionId],
  );
  const out: CloudEvent[] = [];
  const told = new Set<string>();
  for (const o of offers) {
    told.add(o.buyerId);
    if (only) continue;
    if (o.result === 'paid') {
      const bonus = a.house_bonus ?? 0;
      out.push(announcement<AuctionWonData>(ANNOUNCEMENT_TYPES.won, `${auctionId}:won`, auctionId, a.closed_at, {
        auctionId, buyerId: o.buyerId, bidId: o.bidId, currency: a.currency, price: o.price, paid: o.price - bonus, bonus,
      }));
    } else {
      out.push(announcement<AuctionOfferFailedData>(ANNOUNCEMENT_TYPES.offerFailed, `${auctionId}:offer_failed:${o.buyerId}`, auctionId, a.closed_at, {
        auctionId, buyerId: o.buyerId, bidId: o.bidId, currency: a.currency, price: o.price, rank: o.rank, reason: 'cannot_pay',
      }));
    }
  }
  const losers = only ? [...only] : await biddersOf(c, auctionId);
  for (const buyerId of losers.sort()) {
    if (told.has(buyerId)) continue;
    out.push(announcement<AuctionLostData>(ANNOUNCEMENT_TYPES.lost, `${auctionId}:lost:${buyerId}`, auctionId, a.closed_at, {
      auctionId, buyerId, outcome: a.outcome, currency: a.currency, price: a.outcome === 'sold' ? a.final_price : null,
    }));
  }
  return out;
}

/** cancelled to each bidder: those the event names and those of the log (or, with `only`, just those). */
async function cancelAnnouncements(c: PoolClient, auctionId: string, named: string[], only?: Set<string>): Promise<CloudEvent[]> {
  const { rows: [a] } = await c.query<{ status: string; closed_at: Date | null }>('SELECT status, closed_at FROM auctions WHERE id = $1', [auctionId]);
  if (!a || a.status !== 'cancelled' || a.closed_at === null) return [];
  const bidders = only ? [...only] : [...new Set([...named, ...(await biddersOf(c, auctionId))])];
  return bidders.sort().map((buyerId) =>
    announcement<AuctionCancelledData>(ANNOUNCEMENT_TYPES.released, `${auctionId}:released:${buyerId}`, auctionId, a.closed_at!, {
      auctionId, buyerId, cancelledAt: a.closed_at!.getTime(),
    }),
  );
}

export type { ClosedData };
