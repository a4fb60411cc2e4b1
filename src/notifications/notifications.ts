/**
 * Telling buyers: each announcement the notifications worker receives is
 * told to its recipient in the inbox, once. The inbox row is keyed by
 * (event id, recipient), so an announcement delivered twice (the auctions
 * worker announces again after a crash, the broker redelivers) creates no
 * second row, and a row only ever goes to the buyer the event names.
 */
import type { Pool } from '../platform/db/pool.js';
import { PermanentError } from '../platform/messaging/consumer.js';
import type { Announcement } from './announcements.js';
import { notificationOf } from './messages.js';
import { insertNotifications, lotsOf, type NotificationRecord } from './repository.js';

export class Notifications {
  constructor(private readonly pool: Pool) {}

  /** Writes the inbox rows of these announcements in one statement; returns the rows that are new. */
  async tell(announcements: Announcement[]): Promise<NotificationRecord[]> {
    const once = [...new Map(announcements.map((a) => [`${a.eventId}\u0000${a.data.buyerId}`, a])).values()];
    const lots = await lotsOf(this.pool, [...new Set(once.map((a) => a.data.auctionId))]);
    const notes = once.map((a) => {
      const lot = lots.get(a.data.auctionId);
      // Settlement announces only auctions it found in Postgres: no retry can make this one known.
      if (!lot) throw new PermanentError(`${a.type} ${a.eventId} names an unknown auction ${a.data.auctionId}`);
      return notificationOf(a, lot);
    });
    return insertNotifications(this.pool, notes);
  }
}
