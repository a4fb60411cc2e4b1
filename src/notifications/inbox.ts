/**
 * A buyer's inbox: their notifications newest first, a page at a time
 * (keyset: `before` is the last id of the previous page), how many arrived
 * since they last opened it, and marking read. A buyer only ever reaches
 * their own rows: every query is keyed by the buyer the token names, and
 * another buyer's id answers as no such notification.
 *
 * Retention is explicit: a buyer keeps at most `cap` notifications, none
 * older than `retentionDays`; older ones are neither shown nor counted, and
 * the workers delete past the cap as inboxes grow and the scheduler sweeps
 * the old ones (src/notifications/retention.ts).
 */
import { AppError } from '../platform/errors.js';
import type { Pool } from '../platform/db/pool.js';
import type { Config } from '../platform/config.js';
import { countUnopened, inboxPage, markAllRead, markRead, notificationsAfter, recordOpened, type NotificationRecord } from './repository.js';

/** `ntf_<seq>`: the inbox's own order, so ids of later notifications are larger. */
export const NOTIFICATION_ID = /^ntf_([1-9][0-9]{0,15})$/;

export const notificationIdOf = (seq: number) => `ntf_${seq}`;

/** The seq an id names, or undefined when it is not a notification id. */
export function seqOf(id: string): number | undefined {
  const m = NOTIFICATION_ID.exec(id);
  const seq = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(seq) ? seq : undefined;
}

export interface NotificationView {
  id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  createdAt: string;
  readAt: string | null;
}

export interface InboxPage {
  items: NotificationView[];
  /** The `before` of the next page, null on the last. */
  next: string | null;
  /** Notifications created after the buyer last opened the inbox. */
  unread: number;
}

export interface Retention {
  cap: number;
  retentionDays: number;
}

export const retentionOf = (cfg: Config): Retention => ({ cap: cfg.STAMPEDE_NOTIFICATION_INBOX_CAP, retentionDays: cfg.STAMPEDE_NOTIFICATION_RETENTION_DAYS });

export const viewOf = (n: NotificationRecord): NotificationView => ({
  id: notificationIdOf(n.seq), type: n.type, title: n.title, body: n.body, data: n.data, createdAt: n.createdAt.toISOString(),
  readAt: n.readAt?.toISOString() ?? null,
});

const DAY_MS = 86_400_000;

/** The oldest creation time a retention keeps. */
export const keptSince = (r: Retention, now = Date.now()) => new Date(now - r.retentionDays * DAY_MS);

export class Inbox {
  constructor(private readonly pool: Pool, private readonly retention: Retention) {}

  private since(): Date {
    return keptSince(this.retention);
  }

  async page(buyerId: string, limit: number, before: number | undefined): Promise<InboxPage> {
    const since = this.since();
    const [rows, unread] = await Promise.all([
      inboxPage(this.pool, buyerId, limit + 1, before, since),
      countUnopened(this.pool, buyerId, since),
    ]);
    const items = rows.slice(0, limit).map(viewOf);
    return { items, next: rows.length > limit ? items[items.length - 1]!.id : null, unread };
  }

  /** The buyer's notifications after `afterSeq`, oldest first, at most `limit` (what an SSE stream missed). */
  async after(buyerId: string, afterSeq: number, limit: number): Promise<NotificationView[]> {
    return (await notificationsAfter(this.pool, buyerId, afterSeq, limit, this.since())).map(viewOf);
  }

  async open(buyerId: string): Promise<{ openedAt: string }> {
    return { openedAt: (await recordOpened(this.pool, buyerId)).toISOString() };
  }

  async markRead(buyerId: string, seq: number): Promise<NotificationView> {
    const read = await markRead(this.pool, buyerId, seq, this.since());
    if (!read) throw new AppError('NOT_FOUND', 'no such notification');
    return viewOf(read);
  }

  async markAllRead(buyerId: string): Promise<{ read: number }> {
    return { read: await markAllRead(this.pool, buyerId) };
  }
}
