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
 * It returns the announcements (announcements.ts), built from what is
 * stored, so a redelivered close announces again the very same events with
 * the very same ids.
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import { inTransaction } from '../platform/db/pool.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import type { AuctionLogEvent, ClosedData } from './events.js';
import { cancelAnnouncements, closeAnnouncements, outbidAnnouncement } from './announcements.js';
import {
  appendToLog, debitWallet, insertLedgerEntries, insertOffers, liveUsers, lockAuctions, lockWallets, recordCancellation, recordOutcome,
  type AuctionRecord, type LedgerEntry, type OfferAttempt, type WalletKey,
} from './repository.js';

export class UnknownAuctionError extends Error {}
export class ConcurrentAuctionSettlementError extends Error {}

type CloseEvent = AuctionLogEvent & { type: 'closed' };
type CancelEvent = AuctionLogEvent & { type: 'cancelled' };

export function settleAuctions(pool: Pool, events: AuctionLogEvent[]): Promise<CloudEvent[]> {
  return inTransaction(pool, (tx) => settleInTransaction(tx, events));
}

/** An auction not settled yet and not cancelled: a close settles it, a late bid waits for its close. */
const unsettled = (auction: AuctionRecord) => auction.outcome === null && auction.status !== 'cancelled';

async function settleInTransaction(tx: PoolClient, batch: AuctionLogEvent[]): Promise<CloudEvent[]> {
  const events = [...new Map(batch.map((e) => [e.eventId, e])).values()];
  const auctionIds = [...new Set(events.map((e) => e.auctionId))].sort();
  const before = new Map((await lockAuctions(tx, auctionIds)).map((auction) => [auction.id, auction]));
  const missing = auctionIds.filter((id) => !before.has(id));
  if (missing.length > 0) throw new UnknownAuctionError(`unknown auction ${missing.join(', ')}`);

  const inserted = await appendToLog(tx, events);

  const closes = new Map<string, CloseEvent>();
  const cancels = new Map<string, CancelEvent>();
  for (const e of events) {
    if (e.type === 'closed') closes.set(e.auctionId, e);
    else if (e.type === 'cancelled') cancels.set(e.auctionId, e);
  }
  const toSettle = [...closes.values()].filter((e) => unsettled(before.get(e.auctionId)!));
  if (toSettle.length > 0) await settleCloses(tx, toSettle, before);
  for (const e of cancels.values()) await recordCancellation(tx, e.auctionId, e.data.cancelledAt);

  const announcements: CloudEvent[] = [];
  // A bid that took the lead: its previous leader is told (every delivery announces again, with the same id).
  for (const e of events) {
    const outbid = e.type === 'bid_placed' ? outbidAnnouncement(e) : undefined;
    if (outbid) announcements.push(outbid);
  }
  for (const e of closes.values()) announcements.push(...(await closeAnnouncements(tx, e.auctionId)));
  for (const e of cancels.values()) announcements.push(...(await cancelAnnouncements(tx, e.auctionId, e.data.bidders)));
  // A bid logged only after its auction was settled (it was in a retry tier)
  // still gets its bidder told, with the same id the close would have used.
  const late = new Map<string, Set<string>>();
  for (const e of events) {
    if (e.type !== 'bid_placed' || !inserted.has(e.eventId) || closes.has(e.auctionId) || cancels.has(e.auctionId)) continue;
    if (unsettled(before.get(e.auctionId)!)) continue;
    const buyers = late.get(e.auctionId) ?? new Set<string>();
    late.set(e.auctionId, buyers.add(e.data.buyerId));
  }
  for (const [auctionId, buyers] of late) {
    const cancelled = before.get(auctionId)!.status === 'cancelled';
    announcements.push(...(cancelled ? await cancelAnnouncements(tx, auctionId, [], buyers) : await closeAnnouncements(tx, auctionId, buyers)));
  }
  return [...new Map(announcements.map((a) => [a.id, a])).values()];
}

const walletKeyOf = (wallet: WalletKey) => `${wallet.userId}|${wallet.currency}`;

async function settleCloses(tx: PoolClient, closes: CloseEvent[], auctions: Map<string, AuctionRecord>): Promise<void> {
  const currencyOf = (e: CloseEvent) => auctions.get(e.auctionId)!.currency;
  const buyers = [...new Set(closes.flatMap((e) => e.data.offers.map((offer) => offer.buyerId)))];
  const wallets = new Map<string, WalletKey>();
  for (const e of closes) {
    for (const offer of e.data.offers) {
      const wallet = { userId: offer.buyerId, currency: currencyOf(e) };
      wallets.set(walletKeyOf(wallet), wallet);
    }
  }
  const sortedKeys = [...wallets.keys()].sort();
  const balances = new Map<string, number>();
  for (const wallet of await lockWallets(tx, sortedKeys.map((key) => wallets.get(key)!))) balances.set(walletKeyOf(wallet), wallet.balance);
  // A deleted buyer cannot pay, whatever their wallet holds.
  const alive = await liveUsers(tx, buyers);

  for (const e of closes) {
    const currency = currencyOf(e);
    const attempts = offerInTurn(e.data, (buyerId, net) => {
      const key = walletKeyOf({ userId: buyerId, currency });
      const balance = balances.get(key);
      if (!alive.has(buyerId) || balance === undefined || balance < net) return false;
      balances.set(key, balance - net);
      return true;
    });
    if (attempts.length > 0) await insertOffers(tx, e.auctionId, attempts);
    const winner = attempts.find((a) => a.result === 'paid');
    let houseBonus: number | null = null;
    if (winner) {
      houseBonus = Math.min(winner.bonus, winner.price);
      const wallet = { userId: winner.buyerId, currency };
      const entries: LedgerEntry[] = [
        ...(houseBonus > 0 ? [{ ref: `auction:${e.auctionId}:promotion`, amount: houseBonus, kind: 'promotion' as const }] : []),
        { ref: `auction:${e.auctionId}:win`, amount: -winner.price, kind: 'auction' },
      ];
      if ((await insertLedgerEntries(tx, wallet, entries)) !== entries.length) {
        throw new ConcurrentAuctionSettlementError(`auction ${e.auctionId}: its ledger entries already exist`);
      }
      await debitWallet(tx, wallet, winner.price - houseBonus);
    }
    const recorded = await recordOutcome(tx, e.auctionId, {
      closedAt: e.data.closedAt, winnerId: winner?.buyerId ?? null, finalPrice: winner?.price ?? null, houseBonus,
    });
    if (!recorded) throw new ConcurrentAuctionSettlementError(`auction ${e.auctionId} was settled concurrently`);
  }
}

/**
 * Offers the lot to each bidder of the close in order until one pays:
 * `pay(buyer, net)` takes price - bonus from them, or says they cannot pay.
 */
export function offerInTurn(close: ClosedData, pay: (buyerId: string, net: number) => boolean): OfferAttempt[] {
  const attempts: OfferAttempt[] = [];
  for (const [i, offer] of close.offers.entries()) {
    const paid = pay(offer.buyerId, offer.price - Math.min(offer.bonus, offer.price));
    attempts.push({ rank: i + 1, buyerId: offer.buyerId, bidId: offer.bidId, price: offer.price, bonus: offer.bonus, result: paid ? 'paid' : 'cannot_pay' });
    if (paid) break;
  }
  return attempts;
}
