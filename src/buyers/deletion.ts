/**
 * Deleting a buyer (operators): their bids in open auctions are retracted,
 * their pending purchases cancelled, their tokens refused from now on, what
 * they follow and watch and the addresses they gave for notifications
 * forgotten, and their history stays, anonymised (the user row keeps its id, loses its
 * name and e-mail). Re-running it finishes what a crash interrupted.
 */
import { shardKeyOf, shardOfBuyer } from '../sales/shards.js';
import { Outcome } from '../platform/redis/outcomes.js';
import type { Redis } from 'ioredis';
import { AppError } from '../platform/errors.js';
import type { Pool } from '../platform/db/pool.js';
import { DELETED_USERS, USER_DELETED_CHANNEL } from './keys.js';
import { saleKeys } from '../sales/keys.js';
import { requestCancel } from '../sales/scripts.js';
import type { Bids } from '../auctions/bids.js';
import { forgetDeletedBuyer } from '../notifications/interests.js';

export interface Deletion {
  userId: string;
  deletedAt: string;
  retractedBids: number;
  cancelledPurchases: number;
}

export async function deleteBuyer(pool: Pool, redis: Redis, bids: Bids, userId: string): Promise<Deletion> {
  const { rows } = await pool.query<{ deleted_at: Date }>(
    `UPDATE users SET deleted_at = coalesce(deleted_at, now()), name = 'deleted buyer', email = NULL
     WHERE id = $1 AND kind = 'buyer' RETURNING deleted_at`,
    [userId],
  );
  if (rows.length === 0) throw new AppError('NOT_FOUND', 'no such buyer');
  // Refuse the buyer's tokens first, so nothing new starts while we clean up.
  await redis.sadd(DELETED_USERS, userId);
  await redis.publish(USER_DELETED_CHANNEL, userId);

  await forgetDeletedBuyer(pool, userId);
  const retractedBids = await bids.retractAllOf(userId);
  let cancelledPurchases = 0;
  const { rows: sales } = await pool.query<{ id: string; shards: number }>(`SELECT id, shards FROM sales WHERE status = 'open'`);
  for (const sale of sales) {
    // The buyer's purchases of a sharded sale are in their own shard (src/sales/shards.ts).
    const id = shardKeyOf(sale.id, shardOfBuyer(userId, sale.shards));
    const purchaseId = await redis.hget(saleKeys.inflight(id), userId);
    if (!purchaseId) continue;
    const out = await requestCancel(redis, id, purchaseId, userId);
    if (out.code === Outcome.Applied) cancelledPurchases++;
    else if (out.code !== Outcome.AlreadyApplied && out.code !== Outcome.NotCancellable && out.code !== Outcome.NotFound) throw new Error(`cancel ${purchaseId}: ${JSON.stringify(out)}`);
  }
  return { userId, deletedAt: rows[0]!.deleted_at.toISOString(), retractedBids, cancelledPurchases };
}

/** The deleted buyers an api node refuses, kept current through pub/sub. */
export class DeletedUsers {
  private readonly ids = new Set<string>();
  has(userId: string): boolean {
    return this.ids.has(userId);
  }
  add(userId: string): void {
    this.ids.add(userId);
  }
  async load(redis: Redis): Promise<void> {
    for (const id of await redis.smembers(DELETED_USERS)) this.ids.add(id);
  }
}
