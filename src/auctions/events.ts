/**
 * The auction events: what the auction scripts append to an auction's
 * outbox (lua/auction/*.lua, whose headers are the contract), as the
 * auctions worker reads them, and what settlement announces.
 *
 * Logged events have the id `<auctionId>:<seq>`; seq counts every logged
 * event of the auction from 1 with no gap, so the log in Postgres can be
 * checked for completeness and replayed (see src/domain/auction-rebuild.ts).
 */
export const LOGGED_AUCTION_EVENT_TYPES = ['bid_placed', 'bid_retracted', 'bid_doubled', 'extended', 'closed', 'cancelled'] as const;
export type LoggedAuctionEventType = (typeof LOGGED_AUCTION_EVENT_TYPES)[number];

/** Leader and price after the event, as the script stored them ('' leader: no standing bid). */
export interface AuctionSnapshot {
  price: number | null;
  leader: string;
  leaderBid: string;
}

export interface BidPlacedData extends AuctionSnapshot {
  bidId: string;
  buyerId: string;
  amount: number;
  maxAmount: number;
  placedAt: number;
  price: number;
  bidCount: number;
  endsAt: number;
  /** The previous leader, when this bid took the lead from them. */
  outbid?: string;
}

export interface BidRetractedData extends AuctionSnapshot {
  bidId: string;
  buyerId: string;
  forced: boolean;
  /** The bidder's bid that became standing instead ('' = none). */
  fallbackBid: string;
  retractedAt: number;
}

export interface BidDoubledData extends AuctionSnapshot {
  bidId: string;
  buyerId: string;
  added: number;
  amount: number;
  maxAmount: number;
  bonus: number;
  price: number;
  doubledAt: number;
}

export interface ExtendedData {
  endsAt: number;
  byBid: string;
}

/** One bidder offered the lot: at `price`, of which the house pays `bonus` (its promoter doublings). */
export interface AuctionOffer {
  buyerId: string;
  bidId: string;
  price: number;
  bonus: number;
}

export interface ClosedData extends AuctionSnapshot {
  reason: 'time' | 'buy_now';
  closedAt: number;
  reserveMet: boolean;
  /** Who is offered the lot, in order (already above the reserve; empty: unsold). */
  offers: AuctionOffer[];
}

export interface CancelledData {
  cancelledAt: number;
  /** The bidders with a standing bid when it was cancelled. */
  bidders: string[];
}

interface Logged<T extends LoggedAuctionEventType, D> {
  /** `<auctionId>:<seq>`, the CloudEvent id. */
  eventId: string;
  auctionId: string;
  seq: number;
  type: T;
  time: number;
  data: D & { auctionId: string; seq: number };
}

export type AuctionLogEvent =
  | Logged<'bid_placed', BidPlacedData>
  | Logged<'bid_retracted', BidRetractedData>
  | Logged<'bid_doubled', BidDoubledData>
  | Logged<'extended', ExtendedData>
  | Logged<'closed', ClosedData>
  | Logged<'cancelled', CancelledData>;

/** What settlement announces (routed to the notifications concern). */
export const ANNOUNCEMENT_TYPES = {
  /** To a leader a new bid took the lead from. */
  outbid: 'stampede.auction.outbid.v1',
  won: 'stampede.auction.won.v1',
  lost: 'stampede.auction.lost.v1',
  offerFailed: 'stampede.auction.offer_failed.v1',
  /** To each bidder of a cancelled auction: they are released. */
  released: 'stampede.auction.released.v1',
} as const;

export interface AuctionOutbidData {
  auctionId: string;
  /** The bidder who lost the lead. */
  buyerId: string;
  /** The price after the bid that took it. */
  price: number;
  byBid: string;
}

export interface AuctionWonData {
  auctionId: string;
  buyerId: string;
  bidId: string;
  currency: string;
  /** The price of the lot. */
  price: number;
  /** What the winner's wallet was debited: price - bonus. */
  paid: number;
  /** What the house paid (promoter doublings), at most the price. */
  bonus: number;
}

export interface AuctionOfferFailedData {
  auctionId: string;
  buyerId: string;
  bidId: string;
  currency: string;
  price: number;
  rank: number;
  reason: 'cannot_pay';
}

export interface AuctionLostData {
  auctionId: string;
  buyerId: string;
  outcome: 'sold' | 'unsold';
  currency: string;
  /** The final price when sold, else null. */
  price: number | null;
}

export interface AuctionCancelledData {
  auctionId: string;
  buyerId: string;
  cancelledAt: number;
}
