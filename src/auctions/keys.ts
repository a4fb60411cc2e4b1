/**
 * The only place the auctions' Redis key names are built. Every key of one
 * auction carries the hash tag `{auction:<id>}`.
 */
export const auctionKeys = {
  auction: (id: string) => `{auction:${id}}`,
  bids: (id: string) => `{auction:${id}}:bids`,
  book: (id: string) => `{auction:${id}}:book`,
  standing: (id: string) => `{auction:${id}}:standing`,
  history: (id: string) => `{auction:${id}}:history`,
  mine: (id: string, buyerId: string) => `{auction:${id}}:mine:${buyerId}`,
  rate: (id: string, buyerId: string) => `{auction:${id}}:rate:${buyerId}`,
  idempotency: (id: string, buyerId: string, key: string) => `{auction:${id}}:idem:${buyerId}:${key}`,
  outbox: (id: string) => `{auction:${id}}:outbox`,
  /** Bid decisions by outcome code, every api node's (the operators' live view). */
  outcomes: (id: string) => `{auction:${id}}:outcomes`,
};

/** The auction whose outbox stream this is (a name auctionKeys.outbox built), or undefined for any other stream. */
export function auctionOfOutbox(stream: string): string | undefined {
  return /^\{auction:([^{}]+)\}:outbox$/.exec(stream)?.[1];
}

/** Auctions by the time they are due to close (a hint for the scheduler; the close script decides). */
export const AUCTION_DEADLINES = 'stampede:auction-deadlines';
/** Auctions with the promoter on, by the time of their next promotion. */
export const AUCTION_PROMOTIONS = 'stampede:auction-promotions';
