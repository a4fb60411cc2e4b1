/**
 * What settlement announces (outbid, won or offer, offer_failed, lost, released),
 * built from what is stored, never from what a message says alone: a
 * redelivered event announces again the very same events with the very same
 * ids (at-least-once, deduplicated by id downstream).
 */
import type { PoolClient } from '../platform/db/pool.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import {
  ANNOUNCEMENT_TYPES, type AuctionCancelledData, type AuctionLogEvent, type AuctionLostData, type AuctionOfferData, type AuctionOfferFailedData,
  type AuctionOutbidData, type AuctionSettledData, type AuctionWonData,
} from './events.js';
import { biddersOf, findAuction, offersOf } from './repository.js';

/** The CloudEvent source of every announcement. */
export const ANNOUNCEMENT_SOURCE = 'stampede:auction-settlement';

function announcement<T>(type: string, id: string, auctionId: string, time: Date, data: T): CloudEvent<T> {
  return { specversion: '1.0', id, source: ANNOUNCEMENT_SOURCE, type, time: time.toISOString(), subject: auctionId, datacontenttype: 'application/json', data };
}

/** outbid to the leader a bid took the lead from (the bid's event says who). */
export function outbidAnnouncement(bid: AuctionLogEvent & { type: 'bid_placed' }): CloudEvent<AuctionOutbidData> | undefined {
  if (bid.data.outbid === undefined) return undefined;
  return announcement<AuctionOutbidData>(ANNOUNCEMENT_TYPES.outbid, `${bid.data.bidId}:outbid`, bid.auctionId, new Date(bid.data.placedAt), {
    auctionId: bid.auctionId, buyerId: bid.data.outbid, price: bid.data.price, byBid: bid.data.bidId,
  });
}

/**
 * The close's announcements, from what is stored: won to the winner (offer
 * instead when the bidders offered the lot before them could not pay: the
 * same debit, told as the second-chance offer it is, once), offer_failed to each bidder who could not pay, lost to every other bidder
 * (from the log, and from the offers where the log is not complete yet).
 * And auction.settled, for the seller's webhooks: the outcome once stored,
 * under `<auctionId>:settled` (the settlement's commit is the fact; every
 * redelivery announces it again with that id, and the webhooks fan-out makes
 * one message per endpoint of it).
 * With `only`, just the lost announcements of those bidders.
 */
export async function closeAnnouncements(tx: PoolClient, auctionId: string, only?: Set<string>): Promise<CloudEvent[]> {
  const auction = await findAuction(tx, auctionId);
  if (!auction || auction.outcome === null || auction.closedAt === null) return [];
  const { outcome, closedAt, currency } = auction;
  const announcements: CloudEvent[] = [];
  const told = new Set<string>();
  let settled: AuctionSettledData = {
    auctionId, winner: '', bidId: '', currency, price: null, paid: 0, settledAt: (auction.settledAt ?? closedAt).getTime(),
  };
  for (const offer of await offersOf(tx, auctionId)) {
    told.add(offer.buyerId);
    if (only) continue;
    if (offer.result === 'paid') {
      settled = { ...settled, winner: offer.buyerId, bidId: offer.bidId, price: offer.price, paid: offer.price - (auction.houseBonus ?? 0) };
      const bonus = auction.houseBonus ?? 0;
      const won: AuctionWonData = { auctionId, buyerId: offer.buyerId, bidId: offer.bidId, currency, price: offer.price, paid: offer.price - bonus, bonus };
      announcements.push(offer.rank === 1
        ? announcement<AuctionWonData>(ANNOUNCEMENT_TYPES.won, `${auctionId}:won`, auctionId, closedAt, won)
        : announcement<AuctionOfferData>(ANNOUNCEMENT_TYPES.offer, `${auctionId}:offer`, auctionId, closedAt, { ...won, rank: offer.rank }));
    } else {
      announcements.push(announcement<AuctionOfferFailedData>(ANNOUNCEMENT_TYPES.offerFailed, `${auctionId}:offer_failed:${offer.buyerId}`, auctionId, closedAt, {
        auctionId, buyerId: offer.buyerId, bidId: offer.bidId, currency, price: offer.price, rank: offer.rank, reason: 'cannot_pay',
      }));
    }
  }
  const losers = only ? [...only] : await biddersOf(tx, auctionId);
  for (const buyerId of losers.sort()) {
    if (told.has(buyerId)) continue;
    announcements.push(announcement<AuctionLostData>(ANNOUNCEMENT_TYPES.lost, `${auctionId}:lost:${buyerId}`, auctionId, closedAt, {
      auctionId, buyerId, outcome, currency, price: outcome === 'sold' ? auction.finalPrice : null,
    }));
  }
  if (!only) announcements.push(announcement<AuctionSettledData>(ANNOUNCEMENT_TYPES.settled, `${auctionId}:settled`, auctionId, new Date(settled.settledAt), settled));
  return announcements;
}

/** released to each bidder of a cancelled auction: those the event names and those of the log (or, with `only`, just those). */
export async function cancelAnnouncements(tx: PoolClient, auctionId: string, named: string[], only?: Set<string>): Promise<CloudEvent[]> {
  const auction = await findAuction(tx, auctionId);
  if (!auction || auction.status !== 'cancelled' || auction.closedAt === null) return [];
  const cancelledAt = auction.closedAt;
  const bidders = only ? [...only] : [...new Set([...named, ...(await biddersOf(tx, auctionId))])];
  return bidders.sort().map((buyerId) =>
    announcement<AuctionCancelledData>(ANNOUNCEMENT_TYPES.released, `${auctionId}:released:${buyerId}`, auctionId, cancelledAt, {
      auctionId, buyerId, cancelledAt: cancelledAt.getTime(),
    }),
  );
}
