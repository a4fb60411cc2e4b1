/**
 * All of the notification product's SQL, one row type per table; bigints
 * come back as numbers (src/platform/db/pool.ts) and rows become records
 * here, at the boundary.
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import type { Lot, NewNotification } from './messages.js';
import type { NotificationTypeName } from './types.js';

export type Db = Pool | PoolClient;

/** A row of `notifications` (the inbox). */
interface NotificationRow {
  seq: number;
  event_id: string;
  recipient_id: string;
  type: NotificationTypeName;
  title: string;
  body: string;
  data: Record<string, unknown>;
  created_at: Date;
  read_at: Date | null;
}

export interface NotificationRecord {
  seq: number;
  eventId: string;
  recipientId: string;
  type: NotificationTypeName;
  title: string;
  body: string;
  data: Record<string, unknown>;
  createdAt: Date;
  readAt: Date | null;
}

const NOTIFICATION_COLUMNS = 'seq, event_id, recipient_id, type, title, body, data, created_at, read_at';

const recordOf = (r: NotificationRow): NotificationRecord => ({
  seq: r.seq, eventId: r.event_id, recipientId: r.recipient_id, type: r.type, title: r.title, body: r.body, data: r.data,
  createdAt: r.created_at, readAt: r.read_at,
});

/**
 * Writes inbox rows in one statement; a row whose (event, recipient) is
 * already there is skipped. Returns the rows this call created.
 */
export async function insertNotifications(db: Db, notes: NewNotification[]): Promise<NotificationRecord[]> {
  if (notes.length === 0) return [];
  const { rows } = await db.query<NotificationRow>(
    `INSERT INTO notifications (event_id, recipient_id, type, title, body, data)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
     ON CONFLICT (event_id, recipient_id) DO NOTHING
     RETURNING ${NOTIFICATION_COLUMNS}`,
    [
      notes.map((n) => n.eventId), notes.map((n) => n.recipientId), notes.map((n) => n.type), notes.map((n) => n.title),
      notes.map((n) => n.body), notes.map((n) => JSON.stringify(n.data)),
    ],
  );
  return rows.map(recordOf);
}

/** A row of `auctions`, as far as notifications name a lot. */
interface AuctionLotRow {
  id: string;
  title: string;
  currency: string;
}

/** The title and currency of each auction (read from the auctions product's table; an unknown id is absent). */
export async function lotsOf(db: Db, auctionIds: string[]): Promise<Map<string, Lot>> {
  if (auctionIds.length === 0) return new Map();
  const { rows } = await db.query<AuctionLotRow>('SELECT id, title, currency FROM auctions WHERE id = ANY($1::text[])', [auctionIds]);
  return new Map(rows.map((r) => [r.id, { title: r.title, currency: r.currency }]));
}
