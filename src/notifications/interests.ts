/**
 * What a buyer asks to hear of: the collections they follow (an auction
 * created in one is told to them, auction.created) and the sales they watch
 * (sale.opening is told to a sale's watchers). Both are audiences of a
 * fan-out (src/notifications/fan-out.ts). Following or watching again
 * changes nothing, and so does stopping again: as elsewhere in Stampede, an
 * action already applied answers as applied (a client retrying a DELETE
 * whose answer it lost is not told 404). A buyer follows at most
 * STAMPEDE_MAX_INTERESTS collections.
 */
import { AppError } from '../platform/errors.js';
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { followCollection, forgetBuyerSettings, interestsOf, saleExists, unfollowCollection, unwatchSale, watchSale } from './repository.js';

export interface InterestView {
  collection: string;
  since: string;
}

export interface SaleWatchView {
  saleId: string;
  since: string;
}

export class Interests {
  constructor(private readonly pool: Pool, private readonly maxPerBuyer: number) {}

  async of(buyerId: string): Promise<{ items: InterestView[]; max: number }> {
    const interests = await interestsOf(this.pool, buyerId);
    return { items: interests.map((i) => ({ collection: i.collection, since: i.since.toISOString() })), max: this.maxPerBuyer };
  }

  /** Follows the collection; `created` is false when the buyer followed it already. */
  async follow(buyerId: string, collection: string): Promise<{ interest: InterestView; created: boolean }> {
    const out = await inTransaction(this.pool, (tx) => followCollection(tx, buyerId, collection, this.maxPerBuyer));
    if (out === 'limit') throw new AppError('LIMIT_REACHED', `a buyer follows at most ${this.maxPerBuyer} collections`, { max: this.maxPerBuyer });
    return { interest: { collection, since: out.interest.since.toISOString() }, created: out.created };
  }

  /** Stops following (the buyer may not have followed it). */
  async unfollow(buyerId: string, collection: string): Promise<void> {
    await unfollowCollection(this.pool, buyerId, collection);
  }

  /** Watches the sale; NOT_FOUND for an unknown sale; `created` false when watched already. */
  async watch(buyerId: string, saleId: string): Promise<{ watch: SaleWatchView; created: boolean }> {
    if (!(await saleExists(this.pool, saleId))) throw new AppError('NOT_FOUND', 'no such sale');
    const { watch, created } = await watchSale(this.pool, buyerId, saleId);
    return { watch: { saleId, since: watch.since.toISOString() }, created };
  }

  /** Stops watching (the buyer may not have watched it); NOT_FOUND for an unknown sale. */
  async unwatch(buyerId: string, saleId: string): Promise<void> {
    if (!(await saleExists(this.pool, saleId))) throw new AppError('NOT_FOUND', 'no such sale');
    await unwatchSale(this.pool, buyerId, saleId);
  }
}

/** Buyer deletion's part here: the deleted buyer follows and watches nothing, and their addresses are gone. */
export const forgetDeletedBuyer = (pool: Pool, buyerId: string): Promise<void> => inTransaction(pool, (tx) => forgetBuyerSettings(tx, buyerId));
