import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

// Random bytes are drawn from a pool refilled 4 KiB at a time: one
// system call per ~250 ids instead of one per id on the purchase path.
let pool = randomBytes(4096);
let offset = 0;

/** A random id body of `length` characters from [0-9a-z]. */
export function randomId(length: number): string {
  if (offset + length > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[pool[offset + i]! % 36];
  offset += length;
  return out;
}

export const SALE_ID = /^sal_[0-9a-z]{12}$/;
export const USER_ID = /^usr_[0-9a-z]{12}$/;
/**
 * A purchase id carries its sale id, so its Redis slot is known from the id
 * alone (with `s<shard>` after it when the purchase was decided in shard 1
 * to 15 of a sharded sale, src/sales/shards.ts), then the time it was made
 * and 16 random characters. Ids of 16 random characters alone (made before
 * the time was added) stay valid.
 */
export const PURCHASE_ID = /^pur_([0-9a-z]{12})(?:s([1-9a-f]))?_(?:[0-9a-z]{8})?[0-9a-z]{16}$/;

const ID_EPOCH = Date.UTC(2024, 0, 1);

/**
 * Milliseconds since 2024 in 8 base-36 digits (enough until 2113): ids made
 * later sort later ("C" collation), so the orders, ledger and event-log
 * indexes keyed by purchase grow at their right edge instead of touching a
 * random page per insert.
 */
export function timePrefix(now = Date.now()): string {
  return (now - ID_EPOCH).toString(36).padStart(8, '0');
}

export const AUCTION_ID = /^auc_[0-9a-z]{12}$/;
/** A bid id carries its auction id, like a purchase id its sale's. */
export const BID_ID = /^bid_([0-9a-z]{12})_[0-9a-z]{16}$/;
export const newAuctionId = () => 'auc_' + randomId(12);
export const newBidId = (auctionId: string) => 'bid_' + auctionId.slice(4) + '_' + randomId(16);
export const newSaleId = () => 'sal_' + randomId(12);
export const newUserId = () => 'usr_' + randomId(12);
export const newPurchaseId = (saleId: string, shard = 0) =>
  'pur_' + saleId.slice(4) + (shard === 0 ? '' : 's' + shard.toString(16)) + '_' + timePrefix() + randomId(16);

/** The sale a purchase id belongs to, or undefined when the id is malformed. */
export function saleOfPurchase(purchaseId: string): string | undefined {
  const m = PURCHASE_ID.exec(purchaseId);
  return m ? 'sal_' + m[1] : undefined;
}

/** The shard of its sale a purchase was decided in (0 for an unsharded sale), or undefined when the id is malformed. */
export function shardOfPurchase(purchaseId: string): number | undefined {
  const m = PURCHASE_ID.exec(purchaseId);
  return m ? (m[2] ? parseInt(m[2], 16) : 0) : undefined;
}

/** A scheduled notification: an operator's announcement (`ann_`) or a sale's opening notice (`sop_`). */
export const SEND_ID = /^(?:ann|sop)_[0-9a-z]{12}$/;
export const newAnnouncementId = () => 'ann_' + randomId(12);

/** An API key's public id: operators list and revoke keys by it. */
export const API_KEY_ID = /^key_[0-9a-z]{12}$/;
export const newApiKeyId = () => 'key_' + randomId(12);

/** A seller's (or an operator's) webhook endpoint. */
export const WEBHOOK_ID = /^whk_[0-9a-z]{12}$/;
export const newWebhookId = () => 'whk_' + randomId(12);
/** One message to one endpoint (Standard Webhooks' `webhook-id`): made once per (event, endpoint), later ones sort later. */
export const WEBHOOK_MESSAGE_ID = /^msg_[0-9a-z]{8}[0-9a-z]{16}$/;
export const newWebhookMessageId = () => 'msg_' + timePrefix() + randomId(16);
