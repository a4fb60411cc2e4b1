/**
 * How the auction scripts store a bid and the book in Redis, read and
 * written in TypeScript (the encodings are lua/includes/auctionBook.lua's:
 * parseBid/encodeBid, memberOf, encodeTop).
 */

/** One bid as Redis stores it. */
export interface StoredBid {
  bidId: string;
  buyerId: string;
  amount: number;
  maxAmount: number;
  seq: number;
  status: 'active' | 'retracted';
  placedAt: number;
  bonus: number;
}

/** The bid whose bids-hash field is `bidId` and value `stored` ('buyer|amount|max|seq|status|placedAt|bonus'). */
export function parseStoredBid(bidId: string, stored: string): StoredBid {
  const [buyerId, amount, maxAmount, seq, status, placedAt, bonus] = stored.split('|');
  return {
    bidId, buyerId: buyerId!, amount: Number(amount), maxAmount: Number(maxAmount), seq: Number(seq), status: status as StoredBid['status'],
    placedAt: Number(placedAt), bonus: Number(bonus),
  };
}

export const encodeStoredBid = (bid: StoredBid): string =>
  [bid.buyerId, bid.amount, bid.maxAmount, bid.seq, bid.status, bid.placedAt, bid.bonus].join('|');

/** The largest sequence number a bid can have; the book stores SEQ_BASE - seq, so earlier bids sort higher. */
const SEQ_BASE = 999_999_999_999;

/** The book member of a standing bid. */
export const bookMemberOf = (bid: StoredBid): string => String(SEQ_BASE - bid.seq).padStart(12, '0') + ':' + bid.buyerId + ':' + bid.bidId;

/**
 * The auction hash's `top` field: the book's two best standing bids, in the
 * book's order (highest maximum first, the earlier bid among equals).
 */
export function bookTopOf(standing: StoredBid[]): string {
  const [leader, runnerUp] = [...standing].sort((x, y) => y.maxAmount - x.maxAmount || x.seq - y.seq);
  if (!leader) return '';
  return [leader.buyerId, leader.bidId, leader.amount, leader.maxAmount, runnerUp?.buyerId ?? '', runnerUp?.maxAmount ?? ''].join('|');
}
