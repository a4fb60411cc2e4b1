/**
 * Telling a seller what happened to their integration (a webhook endpoint
 * disabled after failing for days): an inbox item of their own, once per
 * event (keyed by its id like every notification), read with the seller's
 * user token at GET /v1/notifications like a buyer's. It is an
 * `announcement` (in-app, not critical): a type of its own would add a
 * switch to every buyer's preferences.
 */
import type { Pool } from '../platform/db/pool.js';
import { insertNotifications } from './repository.js';

export interface SellerNotice {
  /** Stable per occurrence, so telling it twice writes one item. */
  eventId: string;
  sellerId: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
}

export class SellerNotices {
  constructor(private readonly pool: Pool) {}

  async tell(n: SellerNotice): Promise<void> {
    await insertNotifications(this.pool, [{ eventId: n.eventId, recipientId: n.sellerId, type: 'announcement', title: n.title, body: n.body, data: n.data }]);
  }
}
