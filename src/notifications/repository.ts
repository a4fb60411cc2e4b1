/**
 * All of the notification product's SQL, one row type per table; bigints
 * come back as numbers (src/platform/db/pool.ts) and rows become records
 * here, at the boundary.
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import { copyInto, tsv } from '../platform/db/copy.js';
import type { NewNotification, SubjectName } from './messages.js';
import type { Channel, NotificationTypeName } from './types.js';

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

export interface NotificationRecord extends NewNotification {
  seq: number;
  createdAt: Date;
  readAt: Date | null;
}

const NOTIFICATION_COLUMNS = 'seq, event_id, recipient_id, type, title, body, data, created_at, read_at';

const recordOf = (r: NotificationRow): NotificationRecord => ({
  seq: r.seq, eventId: r.event_id, recipientId: r.recipient_id, type: r.type, title: r.title, body: r.body, data: r.data,
  createdAt: r.created_at, readAt: r.read_at,
});

const notificationColumns = (notes: NewNotification[]) => [
  notes.map((n) => n.eventId), notes.map((n) => n.recipientId), notes.map((n) => n.type), notes.map((n) => n.title),
  notes.map((n) => n.body), notes.map((n) => JSON.stringify(n.data)),
];

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
    notificationColumns(notes),
  );
  return rows.map(recordOf);
}

/**
 * Writes outbid notifications, one per (recipient, auction): a recipient
 * who has one for that auction has it updated in place (the event it tells,
 * title, body, data, created now and unread again) when this one names a
 * higher price; an
 * older or repeated announcement changes nothing. At most one per
 * (recipient, auction) in a call. Returns the rows it created or updated.
 */
export async function upsertOutbids(db: Db, notes: NewNotification[]): Promise<NotificationRecord[]> {
  if (notes.length === 0) return [];
  const { rows } = await db.query<NotificationRow>(
    `INSERT INTO notifications (event_id, recipient_id, type, title, body, data)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
     ON CONFLICT (recipient_id, (data->>'auctionId')) WHERE type = 'auction.outbid'
     DO UPDATE SET event_id = EXCLUDED.event_id, title = EXCLUDED.title, body = EXCLUDED.body, data = EXCLUDED.data, created_at = now(), read_at = NULL
       WHERE (notifications.data->>'price')::bigint < (EXCLUDED.data->>'price')::bigint
     RETURNING ${NOTIFICATION_COLUMNS}`,
    notificationColumns(notes),
  );
  return rows.map(recordOf);
}

/** A row of `auctions` or `sales`, as far as notifications name one. */
interface SubjectRow {
  id: string;
  title: string;
  currency: string;
}

/**
 * The title and currency of each auction and sale (read from the auctions'
 * and the sales' tables: a lot's title, a sale's name); an unknown id is
 * absent. Their ids never clash (`auc_`, `sal_`).
 */
export async function subjectNamesOf(db: Db, ids: { auctions: string[]; sales: string[] }): Promise<Map<string, SubjectName>> {
  if (ids.auctions.length === 0 && ids.sales.length === 0) return new Map();
  const { rows } = await db.query<SubjectRow>(
    `SELECT id, title, currency FROM auctions WHERE id = ANY($1::text[])
     UNION ALL SELECT id, name, currency FROM sales WHERE id = ANY($2::text[])`,
    [ids.auctions, ids.sales],
  );
  return new Map(rows.map((r) => [r.id, { title: r.title, currency: r.currency }]));
}

/** A buyer's inbox page, newest first: rows with seq below `beforeSeq` (all when undefined), created since `since`. */
export async function inboxPage(db: Db, buyerId: string, limit: number, beforeSeq: number | undefined, since: Date): Promise<NotificationRecord[]> {
  const { rows } = await db.query<NotificationRow>(
    `SELECT ${NOTIFICATION_COLUMNS} FROM notifications
      WHERE recipient_id = $1 AND ($3::bigint IS NULL OR seq < $3) AND created_at >= $4
      ORDER BY seq DESC LIMIT $2`,
    [buyerId, limit, beforeSeq ?? null, since],
  );
  return rows.map(recordOf);
}

/** A buyer's notifications after `afterSeq`, oldest first (the SSE stream's resume), created since `since`. */
export async function notificationsAfter(db: Db, buyerId: string, afterSeq: number, limit: number, since: Date): Promise<NotificationRecord[]> {
  const { rows } = await db.query<NotificationRow>(
    `SELECT ${NOTIFICATION_COLUMNS} FROM notifications
      WHERE recipient_id = $1 AND seq > $2 AND created_at >= $4
      ORDER BY seq LIMIT $3`,
    [buyerId, afterSeq, limit, since],
  );
  return rows.map(recordOf);
}

/** A row of `notification_inboxes`. */
interface InboxRow {
  buyer_id: string;
  opened_at: Date;
}

/** How many of the buyer's notifications since `since` were created after they last opened the inbox. */
export async function countUnopened(db: Db, buyerId: string, since: Date): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM notifications n
      WHERE n.recipient_id = $1 AND n.created_at >= $2
        AND n.created_at > coalesce((SELECT opened_at FROM notification_inboxes WHERE buyer_id = $1), '-infinity')`,
    [buyerId, since],
  );
  return rows[0]!.n;
}

/** Records that the buyer opened the inbox now; returns when. */
export async function recordOpened(db: Db, buyerId: string): Promise<Date> {
  const { rows } = await db.query<InboxRow>(
    `INSERT INTO notification_inboxes (buyer_id, opened_at) VALUES ($1, now())
     ON CONFLICT (buyer_id) DO UPDATE SET opened_at = EXCLUDED.opened_at
     RETURNING buyer_id, opened_at`,
    [buyerId],
  );
  return rows[0]!.opened_at;
}

/** Marks one of the buyer's notifications read (the first time only); undefined when the buyer has no such notification. */
export async function markRead(db: Db, buyerId: string, seq: number, since: Date): Promise<NotificationRecord | undefined> {
  const { rows } = await db.query<NotificationRow>(
    `UPDATE notifications SET read_at = coalesce(read_at, now())
      WHERE seq = $1 AND recipient_id = $2 AND created_at >= $3
      RETURNING ${NOTIFICATION_COLUMNS}`,
    [seq, buyerId, since],
  );
  return rows[0] && recordOf(rows[0]);
}

/** Marks every unread notification of the buyer read; returns how many it marked. */
export async function markAllRead(db: Db, buyerId: string): Promise<number> {
  const { rowCount } = await db.query('UPDATE notifications SET read_at = now() WHERE recipient_id = $1 AND read_at IS NULL', [buyerId]);
  return rowCount ?? 0;
}

/**
 * The cap: deletes these buyers' notifications past the newest `cap` of
 * each (the age is swept apart: deleteExpiredNotifications). A buyer under
 * the cap costs a walk of their own rows in the primary key; the rows past
 * it are deleted by their tuple ids (no join back). A row updated meanwhile
 * (marked read) has a new tuple id and waits for the next prune. Returns how
 * many it deleted.
 */
export async function pruneInboxes(db: Db, buyerIds: string[], cap: number): Promise<number> {
  if (buyerIds.length === 0) return 0;
  const { rowCount } = await db.query(
    `DELETE FROM notifications WHERE ctid = ANY (ARRAY(
       SELECT past.ctid FROM unnest($1::text[]) AS b(id)
         CROSS JOIN LATERAL (SELECT ctid FROM notifications WHERE recipient_id = b.id ORDER BY seq DESC OFFSET $2) past))`,
    [buyerIds, cap],
  );
  return rowCount ?? 0;
}

/** Retention by age: deletes up to `limit` notifications created before `before`; returns how many it deleted. */
export async function deleteExpiredNotifications(db: Db, before: Date, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    'DELETE FROM notifications WHERE ctid = ANY (ARRAY(SELECT ctid FROM notifications WHERE created_at < $1 LIMIT $2))',
    [before, limit],
  );
  return rowCount ?? 0;
}

/** A row of `notification_preferences`: only what the buyer set. */
interface PreferencesRow {
  buyer_id: string;
  channels: Record<string, boolean>;
  types: Record<string, Record<string, boolean>>;
  email: string | null;
  phone: string | null;
  time_zone: string | null;
  quiet_start: number | null;
  quiet_end: number | null;
}

export interface PreferencesRecord {
  buyerId: string;
  channels: Partial<Record<Channel, boolean>>;
  types: Partial<Record<NotificationTypeName, Partial<Record<Channel, boolean>>>>;
  email: string | null;
  phone: string | null;
  timeZone: string | null;
  /** Minutes after local midnight. */
  quietStart: number | null;
  quietEnd: number | null;
}

const PREFERENCE_COLUMNS = 'buyer_id, channels, types, email, phone, time_zone, quiet_start, quiet_end';

const preferencesOfRow = (r: PreferencesRow): PreferencesRecord => ({
  buyerId: r.buyer_id, channels: r.channels, types: r.types, email: r.email, phone: r.phone, timeZone: r.time_zone,
  quietStart: r.quiet_start, quietEnd: r.quiet_end,
});

/** What each of these buyers set (a buyer who never set anything is absent). */
export async function preferencesOf(db: Db, buyerIds: string[]): Promise<Map<string, PreferencesRecord>> {
  if (buyerIds.length === 0) return new Map();
  const { rows } = await db.query<PreferencesRow>(`SELECT ${PREFERENCE_COLUMNS} FROM notification_preferences WHERE buyer_id = ANY($1::text[])`, [buyerIds]);
  return new Map(rows.map((r) => [r.buyer_id, preferencesOfRow(r)]));
}

/** Replaces what the buyer set. */
export async function savePreferences(db: Db, p: PreferencesRecord): Promise<void> {
  await db.query(
    `INSERT INTO notification_preferences (${PREFERENCE_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
     ON CONFLICT (buyer_id) DO UPDATE SET channels = EXCLUDED.channels, types = EXCLUDED.types, email = EXCLUDED.email, phone = EXCLUDED.phone,
       time_zone = EXCLUDED.time_zone, quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end, updated_at = now()`,
    [p.buyerId, JSON.stringify(p.channels), JSON.stringify(p.types), p.email, p.phone, p.timeZone, p.quietStart, p.quietEnd],
  );
}

/** A row of `users`, as far as notifications address a buyer. */
interface UserAddressRow {
  id: string;
  email: string | null;
}

/** The e-mail address each buyer's account was created with (buyers without one, or deleted, are absent). */
export async function accountEmailsOf(db: Db, buyerIds: string[]): Promise<Map<string, string>> {
  if (buyerIds.length === 0) return new Map();
  const { rows } = await db.query<UserAddressRow>(
    `SELECT id, email FROM users WHERE id = ANY($1::text[]) AND email IS NOT NULL AND deleted_at IS NULL`,
    [buyerIds],
  );
  return new Map(rows.map((r) => [r.id, r.email!]));
}

/** A row of `notification_emails` (the e-mail channel). */
interface EmailRow {
  event_id: string;
  recipient_id: string;
  type: NotificationTypeName;
  address: string;
  subject: string;
  body: string;
  message_id: string;
  not_before: Date | null;
  throttle_key: string | null;
  sent_at: Date | null;
}

export interface EmailRecord {
  eventId: string;
  recipientId: string;
  type: NotificationTypeName;
  address: string;
  subject: string;
  body: string;
  messageId: string;
  /** The end of the buyer's quiet hours it was told in; null: at once. */
  notBefore: Date | null;
  /** What throttles it (the auction of an outbid e-mail): one per (recipient, key) and window. */
  throttleKey: string | null;
  sentAt: Date | null;
}

export type NewEmail = Omit<EmailRecord, 'sentAt'>;

/** The key of a notification's e-mail or SMS: one of each per (event, recipient). */
export interface DeliveryKey {
  eventId: string;
  recipientId: string;
}

/** The channels that deliver outside the app, each with its table (one row per (event, recipient), `sent_at` once sent). */
export type Delivery = 'email' | 'sms';

const DELIVERY_TABLES: Record<Delivery, string> = { email: 'notification_emails', sms: 'notification_sms' };

const EMAIL_COLUMNS = 'event_id, recipient_id, type, address, subject, body, message_id, not_before, throttle_key, sent_at';

const emailOf = (r: EmailRow): EmailRecord => ({
  eventId: r.event_id, recipientId: r.recipient_id, type: r.type, address: r.address, subject: r.subject, body: r.body,
  messageId: r.message_id, notBefore: r.not_before, throttleKey: r.throttle_key, sentAt: r.sent_at,
});

/** Records e-mails to send in one statement; one already recorded for its (event, recipient) is kept as it is. */
export async function insertEmails(db: Db, emails: NewEmail[]): Promise<void> {
  if (emails.length === 0) return;
  await db.query(
    `INSERT INTO notification_emails (event_id, recipient_id, type, address, subject, body, message_id, not_before, throttle_key)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[])
     ON CONFLICT (event_id, recipient_id) DO NOTHING`,
    emailColumns(emails),
  );
}

const emailColumns = (emails: NewEmail[]) => [
  emails.map((e) => e.eventId), emails.map((e) => e.recipientId), emails.map((e) => e.type), emails.map((e) => e.address),
  emails.map((e) => e.subject), emails.map((e) => e.body), emails.map((e) => e.messageId), emails.map((e) => e.notBefore), emails.map((e) => e.throttleKey),
];

/**
 * The throttle: records each of these e-mails (one per (recipient,
 * throttle key)) unless that recipient has one under its key created within
 * the last `windowMs`; one that is there and not sent yet takes the new
 * subject and body (it goes out telling the latest). The caller holds the
 * pairs' locks (lockThrottles), so two transactions never both record one.
 */
export async function recordThrottledEmails(db: Db, emails: NewEmail[], windowMs: number): Promise<void> {
  if (emails.length === 0) return;
  await db.query(
    `UPDATE notification_emails e SET subject = k.subject, body = k.body
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(recipient_id, throttle_key, subject, body)
      WHERE e.recipient_id = k.recipient_id AND e.throttle_key = k.throttle_key AND e.sent_at IS NULL
        AND e.created_at > now() - make_interval(secs => $5::bigint / 1000.0)`,
    [emails.map((e) => e.recipientId), emails.map((e) => e.throttleKey), emails.map((e) => e.subject), emails.map((e) => e.body), windowMs],
  );
  await db.query(
    `INSERT INTO notification_emails (event_id, recipient_id, type, address, subject, body, message_id, not_before, throttle_key)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[])
         AS k(event_id, recipient_id, type, address, subject, body, message_id, not_before, throttle_key)
      WHERE NOT EXISTS (
        SELECT 1 FROM notification_emails e WHERE e.recipient_id = k.recipient_id AND e.throttle_key = k.throttle_key
           AND e.created_at > now() - make_interval(secs => $10::bigint / 1000.0))
     ON CONFLICT (event_id, recipient_id) DO NOTHING`,
    [...emailColumns(emails), windowMs],
  );
}

/** The unsent e-mails these recipients have under these throttle keys (asked for again on every delivery, as unsentOf's). */
export async function unsentThrottledEmailsOf(db: Db, emails: Pick<NewEmail, 'recipientId' | 'throttleKey'>[]): Promise<DeliveryKey[]> {
  if (emails.length === 0) return [];
  const { rows } = await db.query<Pick<EmailRow, 'event_id' | 'recipient_id'>>(
    `SELECT e.event_id, e.recipient_id FROM notification_emails e
       JOIN unnest($1::text[], $2::text[]) AS k(recipient_id, throttle_key) USING (recipient_id, throttle_key)
      WHERE e.sent_at IS NULL`,
    [emails.map((e) => e.recipientId), emails.map((e) => e.throttleKey)],
  );
  return rows.map((r) => ({ eventId: r.event_id, recipientId: r.recipient_id }));
}

/** Holds a transaction lock on each (recipient, key) pair, in one order for every caller (no deadlock). */
export async function lockThrottles(db: PoolClient, pairs: { recipientId: string; key: string }[]): Promise<void> {
  if (pairs.length === 0) return;
  const names = [...new Set(pairs.map((p) => `notification throttle ${p.recipientId} ${p.key}`))].sort();
  await db.query('SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) FROM unnest($1::text[]) AS name ORDER BY name', [names]);
}

/** Of these e-mails or SMS, the ones recorded and not sent yet. */
export async function unsentOf(db: Db, delivery: Delivery, keys: DeliveryKey[]): Promise<DeliveryKey[]> {
  if (keys.length === 0) return [];
  const { rows } = await db.query<Pick<EmailRow, 'event_id' | 'recipient_id'>>(
    `SELECT d.event_id, d.recipient_id FROM ${DELIVERY_TABLES[delivery]} d
       JOIN unnest($1::text[], $2::text[]) AS k(event_id, recipient_id) USING (event_id, recipient_id)
      WHERE d.sent_at IS NULL`,
    [keys.map((k) => k.eventId), keys.map((k) => k.recipientId)],
  );
  return rows.map((r) => ({ eventId: r.event_id, recipientId: r.recipient_id }));
}

/**
 * Locks an unsent e-mail or SMS for the caller's transaction; undefined when
 * it was sent already, or another transaction holds it (that one sends it).
 */
async function lockUnsent<Row extends EmailRow | SmsRow>(db: PoolClient, delivery: Delivery, columns: string, key: DeliveryKey): Promise<Row | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT ${columns} FROM ${DELIVERY_TABLES[delivery]} WHERE event_id = $1 AND recipient_id = $2 AND sent_at IS NULL FOR UPDATE SKIP LOCKED`,
    [key.eventId, key.recipientId],
  );
  return rows[0];
}

export async function lockUnsentEmail(db: PoolClient, key: DeliveryKey): Promise<EmailRecord | undefined> {
  const row = await lockUnsent<EmailRow>(db, 'email', EMAIL_COLUMNS, key);
  return row && emailOf(row);
}

export async function recordSent(db: PoolClient, delivery: Delivery, key: DeliveryKey): Promise<void> {
  await db.query(`UPDATE ${DELIVERY_TABLES[delivery]} SET sent_at = now() WHERE event_id = $1 AND recipient_id = $2`, [key.eventId, key.recipientId]);
}

/** A row of `notification_sms` (the SMS channel). */
interface SmsRow {
  event_id: string;
  recipient_id: string;
  type: NotificationTypeName;
  phone: string;
  body: string;
  not_before: Date | null;
  sent_at: Date | null;
}

export interface SmsRecord {
  eventId: string;
  recipientId: string;
  type: NotificationTypeName;
  phone: string;
  body: string;
  /** As EmailRecord's. */
  notBefore: Date | null;
  sentAt: Date | null;
}

export type NewSms = Omit<SmsRecord, 'sentAt'>;

const SMS_COLUMNS = 'event_id, recipient_id, type, phone, body, not_before, sent_at';

const smsOf = (r: SmsRow): SmsRecord => ({
  eventId: r.event_id, recipientId: r.recipient_id, type: r.type, phone: r.phone, body: r.body, notBefore: r.not_before, sentAt: r.sent_at,
});

/** Records SMS to send in one statement; one already recorded for its (event, recipient) is kept as it is. */
export async function insertSms(db: Db, messages: NewSms[]): Promise<void> {
  if (messages.length === 0) return;
  await db.query(
    `INSERT INTO notification_sms (event_id, recipient_id, type, phone, body, not_before)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
     ON CONFLICT (event_id, recipient_id) DO NOTHING`,
    [
      messages.map((m) => m.eventId), messages.map((m) => m.recipientId), messages.map((m) => m.type), messages.map((m) => m.phone), messages.map((m) => m.body),
      messages.map((m) => m.notBefore),
    ],
  );
}

export async function lockUnsentSms(db: PoolClient, key: DeliveryKey): Promise<SmsRecord | undefined> {
  const row = await lockUnsent<SmsRow>(db, 'sms', SMS_COLUMNS, key);
  return row && smsOf(row);
}

/** Switches one type's e-mail off for the buyer, keeping the rest of what they set. */
export async function switchEmailOff(db: Db, buyerId: string, type: NotificationTypeName): Promise<void> {
  await db.query(
    `INSERT INTO notification_preferences (buyer_id, types) VALUES ($1, jsonb_build_object($2::text, '{"email": false}'::jsonb))
     ON CONFLICT (buyer_id) DO UPDATE
       SET types = jsonb_set(notification_preferences.types, ARRAY[$2::text], coalesce(notification_preferences.types -> $2::text, '{}') || '{"email": false}'),
           updated_at = now()`,
    [buyerId, type],
  );
}

// ------------------------------------------------------------ scheduled sends

export type SendType = 'announcement' | 'sale.opening';
export type SendStatus = 'scheduled' | 'sending' | 'sent' | 'cancelled';
/** Who a scheduled notification goes to: the audience of the fan-out it becomes. */
export type Audience = AudienceRecord;

/** What a scheduled send says, spelled the same in its row and its record. */
interface SendContent {
  id: string;
  type: SendType;
  audience: Audience;
  title: string | null;
  body: string | null;
  channels: Channel[] | null;
  status: SendStatus;
  recipients: number | null;
}

/** A row of `notification_sends`. */
interface SendRow extends SendContent {
  send_at: Date;
  created_at: Date;
  started_at: Date | null;
  sent_at: Date | null;
  cancelled_at: Date | null;
}

export interface SendRecord extends SendContent {
  sendAt: Date;
  createdAt: Date;
  startedAt: Date | null;
  sentAt: Date | null;
  cancelledAt: Date | null;
}

export type NewSend = Pick<SendRecord, 'id' | 'type' | 'audience' | 'title' | 'body' | 'channels' | 'sendAt'>;

const SEND_COLUMNS = 'id, type, audience, title, body, channels, send_at, status, recipients, created_at, started_at, sent_at, cancelled_at';

const sendOf = (r: SendRow): SendRecord => ({
  id: r.id, type: r.type, audience: r.audience, title: r.title, body: r.body, channels: r.channels, sendAt: r.send_at, status: r.status,
  recipients: r.recipients, createdAt: r.created_at, startedAt: r.started_at, sentAt: r.sent_at, cancelledAt: r.cancelled_at,
});

/** Records a send as scheduled; one whose id is there already is left as it is (undefined). */
export async function insertSend(db: Db, s: NewSend): Promise<SendRecord | undefined> {
  const { rows } = await db.query<SendRow>(
    `INSERT INTO notification_sends (id, type, audience, title, body, channels, send_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO NOTHING RETURNING ${SEND_COLUMNS}`,
    [s.id, s.type, JSON.stringify(s.audience), s.title, s.body, s.channels, s.sendAt],
  );
  return rows[0] && sendOf(rows[0]);
}

export async function findSend(db: Db, id: string): Promise<SendRecord | undefined> {
  const { rows } = await db.query<SendRow>(`SELECT ${SEND_COLUMNS} FROM notification_sends WHERE id = $1`, [id]);
  return rows[0] && sendOf(rows[0]);
}

/** Every send still scheduled, earliest first (the due index's rebuild). */
export async function scheduledSends(db: Db): Promise<{ id: string; sendAt: Date }[]> {
  const { rows } = await db.query<{ id: string; send_at: Date }>(
    "SELECT id, send_at FROM notification_sends WHERE status = 'scheduled' ORDER BY send_at",
  );
  return rows.map((r) => ({ id: r.id, sendAt: r.send_at }));
}

/** Cancels a send still scheduled; undefined when it is not (sending, sent, cancelled, or no such send). */
export async function cancelSend(db: Db, id: string): Promise<SendRecord | undefined> {
  const { rows } = await db.query<SendRow>(
    `UPDATE notification_sends SET status = 'cancelled', cancelled_at = now() WHERE id = $1 AND status = 'scheduled' RETURNING ${SEND_COLUMNS}`,
    [id],
  );
  return rows[0] && sendOf(rows[0]);
}

/**
 * The worker's claim: a scheduled send becomes sending; one already sending
 * (a redelivery after a crash mid fan-out) is taken again, since the fan-out
 * is idempotent. Undefined for a send cancelled or sent: it sends nothing.
 */
export async function claimSend(db: Db, id: string): Promise<SendRecord | undefined> {
  const { rows } = await db.query<SendRow>(
    `UPDATE notification_sends SET status = 'sending', started_at = coalesce(started_at, now())
      WHERE id = $1 AND status IN ('scheduled', 'sending') RETURNING ${SEND_COLUMNS}`,
    [id],
  );
  return rows[0] && sendOf(rows[0]);
}

/** Records a send done, with the size of the audience it was fanned out to. */
export async function recordSendDone(db: Db, id: string, recipients: number): Promise<void> {
  await db.query("UPDATE notification_sends SET status = 'sent', sent_at = now(), recipients = $2 WHERE id = $1 AND status = 'sending'", [id, recipients]);
}

/** A send stopped by what it tells of (a sale closed before its opening notice): recorded cancelled. */
export async function recordSendDropped(db: Db, id: string): Promise<void> {
  await db.query("UPDATE notification_sends SET status = 'cancelled', cancelled_at = now() WHERE id = $1 AND status IN ('scheduled', 'sending')", [id]);
}

export interface SendProgress {
  /** Buyers of the audience its fan-out reached so far (null: not started). */
  recipients: number | null;
  inApp: number;
  email: { recorded: number; sent: number };
  sms: { recorded: number; sent: number };
}

/** What a send has delivered so far: inbox rows written, e-mails and SMS recorded and sent (keyed by its id as event id). */
export async function sendProgressOf(db: Db, id: string): Promise<SendProgress> {
  const { rows } = await db.query<{ recipients: number | null; in_app: number; emails: number; emails_sent: number; sms: number; sms_sent: number }>(
    `SELECT (SELECT sum(recipients)::int FROM notification_fanout_parts WHERE event_id = $1) AS recipients,
            (SELECT count(*)::int FROM notifications WHERE event_id = $1) AS in_app,
            e.recorded AS emails, e.sent AS emails_sent, s.recorded AS sms, s.sent AS sms_sent
       FROM (SELECT count(*)::int AS recorded, count(sent_at)::int AS sent FROM notification_emails WHERE event_id = $1) e,
            (SELECT count(*)::int AS recorded, count(sent_at)::int AS sent FROM notification_sms WHERE event_id = $1) s`,
    [id],
  );
  const r = rows[0]!;
  return { recipients: r.recipients, inApp: r.in_app, email: { recorded: r.emails, sent: r.emails_sent }, sms: { recorded: r.sms, sent: r.sms_sent } };
}

/** Which of these ids name buyers (users who are not deleted). */
export async function knownBuyers(db: Db, buyerIds: string[]): Promise<Set<string>> {
  if (buyerIds.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>("SELECT id FROM users WHERE id = ANY($1::text[]) AND kind = 'buyer' AND deleted_at IS NULL", [buyerIds]);
  return new Set(rows.map((r) => r.id));
}

/** A row of `sales`, as far as an opening notice names it. */
interface OpeningSaleRow {
  name: string;
  starts_at: Date;
  status: 'open' | 'closed';
}

/** The name, start and status of a sale (read from the sales product's table), or undefined. */
export async function openingSaleOf(db: Db, saleId: string): Promise<{ name: string; startsAt: Date; closed: boolean } | undefined> {
  const { rows } = await db.query<OpeningSaleRow>('SELECT name, starts_at, status FROM sales WHERE id = $1', [saleId]);
  return rows[0] && { name: rows[0].name, startsAt: rows[0].starts_at, closed: rows[0].status === 'closed' };
}

/** A row of `notification_fanouts`, with its parts' counts summed. */
interface FanOutRow {
  event_id: string;
  type: NotificationTypeName;
  title: string;
  body: string;
  data: Record<string, unknown>;
  collection: string | null;
  sale_id: string | null;
  buyer_ids: string[] | null;
  channels: Channel[] | null;
  recipients: number;
  in_app: number;
  email: number;
  sms: number;
  created_at: Date;
  finished_at: Date | null;
}

/** Who a fan-out tells: a collection's followers, a sale's watchers, or these buyers. */
export type AudienceRecord = { collection: string } | { saleId: string } | { buyerIds: string[] };

/** What a fan-out recorded so far (per channel: rows written; recipients: buyers of the audience reached). */
export interface FanOutCountsRecord {
  recipients: number;
  inApp: number;
  email: number;
  sms: number;
}

/** A fan-out: what it tells and to whom, and the counts of all its parts. */
export interface FanOutRecord extends FanOutCountsRecord {
  eventId: string;
  type: NotificationTypeName;
  title: string;
  body: string;
  data: Record<string, unknown>;
  audience: AudienceRecord;
  /** The channels its sender named instead of the type's defaults (null: the defaults). */
  channels: Channel[] | null;
  createdAt: Date;
  /** When its last part finished. */
  finishedAt: Date | null;
}

/** A row of `notification_fanout_parts`. */
interface FanOutPartRow {
  part: number;
  last_id: string | null;
  told_through: string;
  requested_through: string;
  finished_at: Date | null;
}

/** One part of a fan-out's audience and how far it is told. */
export interface FanOutPartRecord {
  part: number;
  /** Its last buyer id (null: to the audience's end). */
  lastId: string | null;
  /** The last buyer id told (the previous part's last when none yet) and the last whose e-mail and SMS requests were confirmed. */
  toldThrough: string;
  requestedThrough: string;
  finishedAt: Date | null;
}

const FANOUT_COLUMNS = 'f.event_id, f.type, f.title, f.body, f.data, f.collection, f.sale_id, f.buyer_ids, f.channels, f.created_at, f.finished_at';
const PART_COLUMNS = 'part, last_id, told_through, requested_through, finished_at';

const fanOutOf = (r: FanOutRow): FanOutRecord => ({
  eventId: r.event_id, type: r.type, title: r.title, body: r.body, data: r.data,
  audience: r.collection !== null ? { collection: r.collection } : r.sale_id !== null ? { saleId: r.sale_id } : { buyerIds: r.buyer_ids! },
  channels: r.channels, recipients: r.recipients, inApp: r.in_app, email: r.email, sms: r.sms, createdAt: r.created_at, finishedAt: r.finished_at,
});

const partOf = (r: FanOutPartRow): FanOutPartRecord => ({
  part: r.part, lastId: r.last_id, toldThrough: r.told_through, requestedThrough: r.requested_through, finishedAt: r.finished_at,
});

/**
 * Records a fan-out unless one is recorded for its event (that one is kept
 * as it is), with a part per bound and one after the last (none: one part);
 * true when this call recorded it.
 */
export async function insertFanOut(
  db: PoolClient, f: Pick<FanOutRecord, 'eventId' | 'type' | 'title' | 'body' | 'data' | 'audience'> & { channels?: Channel[] }, bounds: string[],
): Promise<boolean> {
  const a = f.audience;
  const { rowCount } = await db.query(
    `INSERT INTO notification_fanouts (event_id, type, title, body, data, collection, sale_id, buyer_ids, channels)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING`,
    [f.eventId, f.type, f.title, f.body, JSON.stringify(f.data), 'collection' in a ? a.collection : null, 'saleId' in a ? a.saleId : null,
      'buyerIds' in a ? a.buyerIds : null, f.channels ?? null],
  );
  if (rowCount !== 1) return false;
  const lasts: (string | null)[] = [...bounds, null];
  const afters = ['', ...bounds];
  await db.query(
    `INSERT INTO notification_fanout_parts (event_id, part, last_id, told_through, requested_through)
     SELECT $1, p - 1, last, after, after FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS b(last, after, p)`,
    [f.eventId, lasts, afters],
  );
  return true;
}

const FANOUT_SELECT = `SELECT ${FANOUT_COLUMNS},
    coalesce(sum(p.recipients), 0)::bigint AS recipients, coalesce(sum(p.in_app), 0)::bigint AS in_app,
    coalesce(sum(p.email), 0)::bigint AS email, coalesce(sum(p.sms), 0)::bigint AS sms
  FROM notification_fanouts f LEFT JOIN notification_fanout_parts p ON p.event_id = f.event_id
  WHERE f.event_id = $1 GROUP BY f.event_id`;

export async function findFanOut(db: Db, eventId: string): Promise<FanOutRecord | undefined> {
  const { rows } = await db.query<FanOutRow>(FANOUT_SELECT, [eventId]);
  return rows[0] && fanOutOf(rows[0]);
}

/** A fan-out's parts, in order. */
export async function fanOutParts(db: Db, eventId: string): Promise<FanOutPartRecord[]> {
  const { rows } = await db.query<FanOutPartRow>(`SELECT ${PART_COLUMNS} FROM notification_fanout_parts WHERE event_id = $1 ORDER BY part`, [eventId]);
  return rows.map(partOf);
}

/** Locks a part of a fan-out for the caller's transaction; undefined when unknown or another transaction holds it (that one goes on with it). */
export async function lockFanOutPart(db: PoolClient, eventId: string, part: number): Promise<FanOutPartRecord | undefined> {
  const { rows } = await db.query<FanOutPartRow>(
    `SELECT ${PART_COLUMNS} FROM notification_fanout_parts WHERE event_id = $1 AND part = $2 FOR UPDATE SKIP LOCKED`, [eventId, part]);
  return rows[0] && partOf(rows[0]);
}

/** The event ids of the fan-outs not finished, oldest first. */
export async function unfinishedFanOuts(db: Db): Promise<string[]> {
  const { rows } = await db.query<{ event_id: string }>('SELECT event_id FROM notification_fanouts WHERE finished_at IS NULL ORDER BY created_at');
  return rows.map((r) => r.event_id);
}

/**
 * Records a chunk told: the part's cursor moves to `through` and its counts
 * grow by `added`. A chunk that recorded no e-mail and no SMS has nothing to
 * ask for: its requests count as confirmed with it, when every earlier
 * chunk's were (the requests cursor is at `after`, where the chunk began).
 */
export async function recordChunkTold(db: PoolClient, eventId: string, part: number, after: string, through: string, added: FanOutCountsRecord): Promise<void> {
  await db.query(
    `UPDATE notification_fanout_parts SET told_through = $4, recipients = recipients + $5, in_app = in_app + $6, email = email + $7, sms = sms + $8,
            requested_through = CASE WHEN $7 = 0 AND $8 = 0 AND requested_through = $3 THEN $4 ELSE requested_through END
      WHERE event_id = $1 AND part = $2`,
    [eventId, part, after, through, added.recipients, added.inApp, added.email, added.sms],
  );
}

/**
 * Records a part finished, and the fan-out with it when no other part is
 * left. The fan-out's row is locked first, so of two last parts finishing
 * side by side the second sees the first's commit and finishes the fan-out.
 */
export async function recordPartFinished(db: PoolClient, eventId: string, part: number): Promise<void> {
  await db.query('UPDATE notification_fanout_parts SET finished_at = now() WHERE event_id = $1 AND part = $2 AND finished_at IS NULL', [eventId, part]);
  await db.query('SELECT 1 FROM notification_fanouts WHERE event_id = $1 FOR UPDATE', [eventId]);
  await db.query(
    `UPDATE notification_fanouts SET finished_at = now() WHERE event_id = $1 AND finished_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM notification_fanout_parts WHERE event_id = $1 AND finished_at IS NULL)`,
    [eventId],
  );
}

/** Records that the e-mail and SMS requests of the part's recipients up to `through` were confirmed. */
export async function recordRequestedThrough(db: Db, eventId: string, part: number, through: string): Promise<void> {
  await db.query(
    'UPDATE notification_fanout_parts SET requested_through = $3 WHERE event_id = $1 AND part = $2 AND requested_through < $3', [eventId, part, through]);
}

/** An audience's buyer ids as a query's source (`id`, in "C" order) and its parameter. */
function audienceSource(audience: AudienceRecord): [sql: string, key: string | string[]] {
  return 'collection' in audience ? ['SELECT buyer_id AS id FROM buyer_interests WHERE collection = $1', audience.collection]
    : 'saleId' in audience ? ['SELECT buyer_id AS id FROM sale_watches WHERE sale_id = $1', audience.saleId]
      : ['SELECT DISTINCT b COLLATE "C" AS id FROM unnest($1::text[]) AS b', audience.buyerIds];
}

/** The next `limit` buyers of an audience after buyer id `after` ('') and up to `last` (null: no end), in buyer id order. */
export async function audienceAfter(db: Db, audience: AudienceRecord, after: string, limit: number, last: string | null = null): Promise<string[]> {
  const [source, key] = audienceSource(audience);
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM (${source}) a WHERE id > $2 AND ($4::text IS NULL OR id <= $4) ORDER BY id LIMIT $3`, [key, after, limit, last]);
  return rows.map((r) => r.id);
}

/** A buyer of an audience with what they set (undefined: nothing) and their account's address. */
export interface AudienceMemberRecord {
  id: string;
  set: PreferencesRecord | undefined;
  accountEmail: string | undefined;
}

/** As audienceAfter, each buyer read with their preferences and account address in the same query (a fan-out's chunk). */
export async function audienceMembersAfter(db: Db, audience: AudienceRecord, after: string, limit: number, last: string | null = null): Promise<AudienceMemberRecord[]> {
  const [source, key] = audienceSource(audience);
  const { rows } = await db.query<{ id: string; account_email: string | null } & { [K in keyof PreferencesRow]: PreferencesRow[K] | null }>(
    `SELECT a.id, p.buyer_id, p.channels, p.types, p.email, p.phone, p.time_zone, p.quiet_start, p.quiet_end, u.email AS account_email
       FROM (SELECT id FROM (${source}) s WHERE id > $2 AND ($4::text IS NULL OR id <= $4) ORDER BY id LIMIT $3) a
       LEFT JOIN notification_preferences p ON p.buyer_id = a.id
       LEFT JOIN users u ON u.id = a.id AND u.email IS NOT NULL AND u.deleted_at IS NULL
      ORDER BY a.id`,
    [key, after, limit, last],
  );
  return rows.map((r) => ({
    id: r.id, set: r.buyer_id === null ? undefined : preferencesOfRow(r as PreferencesRow), accountEmail: r.account_email ?? undefined,
  }));
}

/**
 * Where to split an audience into `parts` parts of about equal size (each
 * bound is the last buyer id of a part but the last); none when it has
 * fewer than `minPerPart` buyers a part.
 */
export async function audienceBounds(db: Db, audience: AudienceRecord, parts: number, minPerPart: number): Promise<string[]> {
  const [source, key] = audienceSource(audience);
  const { rows: [size] } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${source}) a`, [key]);
  const count = Math.min(parts, Math.floor(size!.n / minPerPart));
  if (count < 2) return [];
  const each = Math.ceil(size!.n / count);
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM (${source}) a) r WHERE n % $2 = 0 AND n < $3 ORDER BY id`,
    [key, each, size!.n],
  );
  return rows.map((r) => r.id);
}

/** The recipients of an event with a row in the inbox (or an e-mail, an SMS recorded) whose ids are in (after, through]. */
export async function toldBetween(db: Db, channel: Channel, eventId: string, after: string, through: string): Promise<Set<string>> {
  const table = channel === 'in_app' ? 'notifications' : DELIVERY_TABLES[channel];
  const { rows } = await db.query<{ recipient_id: string }>(
    `SELECT recipient_id FROM ${table} WHERE event_id = $1 AND recipient_id > $2 AND recipient_id <= $3`,
    [eventId, after, through],
  );
  return new Set(rows.map((r) => r.recipient_id));
}

/**
 * Writes one notification to each of these recipients in one statement (a
 * fan-out's chunk: the notification sent once, the recipients as one
 * array); a recipient who has the event's row already is skipped. Resolves
 * with the rows written, as their recipient, seq and creation time.
 */
export async function insertBroadcastNotifications(
  db: Db, n: Omit<NewNotification, 'recipientId'>, recipientIds: string[],
): Promise<{ recipientId: string; seq: number; createdAt: Date }[]> {
  if (recipientIds.length === 0) return [];
  const { rows } = await db.query<Pick<NotificationRow, 'seq' | 'recipient_id' | 'created_at'>>(
    `INSERT INTO notifications (event_id, recipient_id, type, title, body, data)
     SELECT $1, r, $3, $4, $5, $6::jsonb FROM unnest($2::text[]) AS r
     ON CONFLICT (event_id, recipient_id) DO NOTHING
     RETURNING seq, recipient_id, created_at`,
    [n.eventId, recipientIds, n.type, n.title, n.body, JSON.stringify(n.data)],
  );
  return rows.map((r) => ({ recipientId: r.recipient_id, seq: r.seq, createdAt: r.created_at }));
}

/** An event's unsent e-mails or SMS of the recipients whose ids are in (after, through]. */
export async function unsentBetween(db: Db, delivery: Delivery, eventId: string, after: string, through: string): Promise<DeliveryKey[]> {
  const { rows } = await db.query<{ recipient_id: string }>(
    `SELECT recipient_id FROM ${DELIVERY_TABLES[delivery]} WHERE event_id = $1 AND recipient_id > $2 AND recipient_id <= $3 AND sent_at IS NULL`,
    [eventId, after, through],
  );
  return rows.map((r) => ({ eventId, recipientId: r.recipient_id }));
}

const tsvLine = (values: (string | null)[]) => values.map(tsv).join('\t') + '\n';
const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** Records e-mails with COPY (the caller made sure none is there: a duplicate aborts the COPY). */
export async function copyEmails(db: PoolClient, emails: NewEmail[]): Promise<void> {
  if (emails.length === 0) return;
  await copyInto(db, 'COPY notification_emails (event_id, recipient_id, type, address, subject, body, message_id, not_before, throttle_key) FROM STDIN',
    emails.map((e) => tsvLine([e.eventId, e.recipientId, e.type, e.address, e.subject, e.body, e.messageId, iso(e.notBefore), e.throttleKey])).join(''));
}

/** Records SMS with COPY (as copyEmails). */
export async function copySms(db: PoolClient, texts: NewSms[]): Promise<void> {
  if (texts.length === 0) return;
  await copyInto(db, 'COPY notification_sms (event_id, recipient_id, type, phone, body, not_before) FROM STDIN',
    texts.map((m) => tsvLine([m.eventId, m.recipientId, m.type, m.phone, m.body, iso(m.notBefore)])).join(''));
}

/** A row of `buyer_interests`. */
interface InterestRow {
  buyer_id: string;
  collection: string;
  created_at: Date;
}

export interface InterestRecord {
  collection: string;
  since: Date;
}

/** The collections a buyer follows, in name order. */
export async function interestsOf(db: Db, buyerId: string): Promise<InterestRecord[]> {
  const { rows } = await db.query<InterestRow>('SELECT buyer_id, collection, created_at FROM buyer_interests WHERE buyer_id = $1 ORDER BY collection', [buyerId]);
  return rows.map((r) => ({ collection: r.collection, since: r.created_at }));
}

/**
 * Follows a collection for the buyer, unless they follow `max` already
 * (under a lock of the buyer's interests for the caller's transaction, so
 * two calls side by side never pass the limit together). Returns the
 * interest and whether this call created it; 'limit' when it would be past `max`.
 */
export async function followCollection(tx: PoolClient, buyerId: string, collection: string, max: number): Promise<{ interest: InterestRecord; created: boolean } | 'limit'> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('buyer interests ' || $1, 0))", [buyerId]);
  const { rows: found } = await tx.query<InterestRow>('SELECT buyer_id, collection, created_at FROM buyer_interests WHERE buyer_id = $1 AND collection = $2', [buyerId, collection]);
  if (found[0]) return { interest: { collection, since: found[0].created_at }, created: false };
  const { rows: counted } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM buyer_interests WHERE buyer_id = $1', [buyerId]);
  if (counted[0]!.n >= max) return 'limit';
  const { rows } = await tx.query<InterestRow>(
    'INSERT INTO buyer_interests (buyer_id, collection) VALUES ($1, $2) RETURNING buyer_id, collection, created_at', [buyerId, collection],
  );
  return { interest: { collection, since: rows[0]!.created_at }, created: true };
}

/** Stops following; false when the buyer did not follow it (nothing changed). */
export async function unfollowCollection(db: Db, buyerId: string, collection: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM buyer_interests WHERE buyer_id = $1 AND collection = $2', [buyerId, collection]);
  return rowCount === 1;
}

/** Whether the sale exists (read from the sales product's table). */
export async function saleExists(db: Db, saleId: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM sales WHERE id = $1', [saleId]);
  return rows.length === 1;
}

/** A row of `sale_watches`. */
interface SaleWatchRow {
  sale_id: string;
  buyer_id: string;
  created_at: Date;
}

export interface SaleWatchRecord {
  saleId: string;
  since: Date;
}

/** Watches the sale for the buyer; returns the watch and whether this call created it. */
export async function watchSale(db: Db, buyerId: string, saleId: string): Promise<{ watch: SaleWatchRecord; created: boolean }> {
  const { rows } = await db.query<SaleWatchRow & { created: boolean }>(
    `WITH added AS (INSERT INTO sale_watches (sale_id, buyer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING sale_id, buyer_id, created_at)
     SELECT sale_id, buyer_id, created_at, true AS created FROM added
     UNION ALL SELECT sale_id, buyer_id, created_at, false FROM sale_watches WHERE sale_id = $1 AND buyer_id = $2 AND NOT EXISTS (SELECT 1 FROM added)`,
    [saleId, buyerId],
  );
  return { watch: { saleId, since: rows[0]!.created_at }, created: rows[0]!.created };
}

/** Stops watching; false when the buyer did not watch it. */
export async function unwatchSale(db: Db, buyerId: string, saleId: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM sale_watches WHERE sale_id = $1 AND buyer_id = $2', [saleId, buyerId]);
  return rowCount === 1;
}

/**
 * The buyers watching a sale, in buyer id order: the next `limit` after
 * `after` ('' from the first). For sale.opening: tell them with a fan-out
 * of `{ saleId }` (fan-out.ts reads them the same way, chunk by chunk).
 */
export function saleWatchersOf(db: Db, saleId: string, after = '', limit = 1000): Promise<string[]> {
  return audienceAfter(db, { saleId }, after, limit);
}

/**
 * A deleted buyer's notification settings go: what they follow and watch
 * (no fan-out finds them again) and the addresses they gave (e-mail, phone,
 * time zone). Their inbox stays with the rest of their history.
 */
export async function forgetBuyerSettings(db: Db, buyerId: string): Promise<void> {
  await db.query('DELETE FROM buyer_interests WHERE buyer_id = $1', [buyerId]);
  await db.query('DELETE FROM sale_watches WHERE buyer_id = $1', [buyerId]);
  await db.query('DELETE FROM notification_preferences WHERE buyer_id = $1', [buyerId]);
}
