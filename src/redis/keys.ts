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
