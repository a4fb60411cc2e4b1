/**
 * The only place the sales' Redis key names are built. Every key of one sale
 * carries the same hash tag, `{sale:<id>}`, so each script runs in one
 * cluster slot. Shard j >= 1 of a sharded sale is built from the id
 * `<id>:<j>` (src/sales/shards.ts shardKeyOf), its own slot.
 */
export const saleKeys = {
  sale: (saleId: string) => `{sale:${saleId}}`,
  bought: (saleId: string) => `{sale:${saleId}}:bought`,
  inflight: (saleId: string) => `{sale:${saleId}}:inflight`,
  rate: (saleId: string, buyerId: string) => `{sale:${saleId}}:rate:${buyerId}`,
  idempotency: (saleId: string, buyerId: string, key: string) => `{sale:${saleId}}:idem:${buyerId}:${key}`,
  purchase: (saleId: string, purchaseId: string) => `{sale:${saleId}}:purchase:${purchaseId}`,
  outbox: (saleId: string) => `{sale:${saleId}}:outbox`,
  /** A private sale's buyers who may buy it (a set). */
  eligible: (saleId: string) => `{sale:${saleId}}:eligible`,
  /** A sharded sale's shard: its log of stock transfers (src/sales/shards.ts). */
  transfers: (saleId: string) => `{sale:${saleId}}:transfers`,
  /** Purchase decisions by outcome code, every api node's (the operators' live view). */
  outcomes: (saleId: string) => `{sale:${saleId}}:outcomes`,
};

/** The sale (or shard, `<id>:<j>`) whose outbox stream this is (a name saleKeys.outbox built), or undefined for any other stream. */
export function saleOfOutbox(stream: string): string | undefined {
  return /^\{sale:([^{}]+)\}:outbox$/.exec(stream)?.[1];
}

/** Pub/sub channel: a sale that was sold out has stock again (message: sale id). */
export const STOCK_CHANNEL = 'stampede:stock-available';
