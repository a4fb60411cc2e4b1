/**
 * The only place Redis key names are built. Every key of one sale carries
 * the same hash tag, `{sale:<id>}`, so each script runs in one cluster slot.
 */
export const saleKeys = {
  sale: (saleId: string) => `{sale:${saleId}}`,
  bought: (saleId: string) => `{sale:${saleId}}:bought`,
  inflight: (saleId: string) => `{sale:${saleId}}:inflight`,
  rate: (saleId: string, buyerId: string) => `{sale:${saleId}}:rate:${buyerId}`,
  idempotency: (saleId: string, buyerId: string, key: string) => `{sale:${saleId}}:idem:${buyerId}:${key}`,
  purchase: (saleId: string, purchaseId: string) => `{sale:${saleId}}:purchase:${purchaseId}`,
  outbox: (saleId: string) => `{sale:${saleId}}:outbox`,
};

/** Every key of one auction carries the hash tag `{auction:<id>}`. */
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
};

/** Auctions by the time they are due to close (a hint for the scheduler; the close script decides). */
export const AUCTION_DEADLINES = 'stampede:auction-deadlines';
/** Auctions with the promoter on, by the time of their next promotion. */
export const AUCTION_PROMOTIONS = 'stampede:auction-promotions';

/** The set of outbox streams the relay drains (one per sale). */
export const OUTBOX_REGISTRY = 'stampede:outboxes';
/** The relay's consumer group on every outbox stream. */
export const RELAY_GROUP = 'relay';
/** Pub/sub channel: a sale that was sold out has stock again (message: sale id). */
export const STOCK_CHANNEL = 'stampede:stock-available';
/**
 * Pub/sub channel of live updates for WebSocket subscribers on every api
 * node. A message is `<topic> <json>`, e.g. `auction/auc_… {"price":…}`;
 * auction scripts publish it in the same call that changes the auction.
 */
export const LIVE_CHANNEL = 'stampede:live';
/** Buyers an operator deleted: their tokens are refused on every api node. */
export const DELETED_USERS = 'stampede:deleted-users';
/** Pub/sub channel: a buyer was deleted (message: user id). */
export const USER_DELETED_CHANNEL = 'stampede:user-deleted';
