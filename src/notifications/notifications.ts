/**
 * Telling buyers: each announcement the notifications worker receives is
 * told to its recipient in the inbox, once, unless the buyer switched that
 * off (src/notifications/preferences.ts; critical types always are), and
 * by e-mail and SMS when they want that and have an address or a phone
 * (sent by the e-mail and SMS workers, once: src/notifications/emails.ts,
 * sms.ts). The inbox row is keyed by (event id, recipient), so an
 * announcement delivered twice (the auctions or orders worker announces
 * again after a crash, the broker redelivers) creates no second row, and a
 * row only ever goes to the buyer the event names.
 *
 * Outbid storms are throttled per (buyer, auction): the inbox keeps one
 * outbid item per auction, updated in place to the latest (highest) price,
 * and at most one outbid e-mail is recorded per window
 * (STAMPEDE_OUTBID_EMAIL_WINDOW_MS); one recorded and not sent yet takes the
 * latest words. The pair is locked for the transaction, so lanes settling
 * side by side never both record one.
 *
 * Retention deletes what a buyer no longer keeps; an announcement
 * redelivered after its row was deleted would be told again (no
 * announcement is redelivered that late: they are retried for seconds, and
 * dead letters are replayed by an operator).
 */
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { PermanentError } from '../platform/messaging/consumer.js';
import { subjectOf, type Announcement } from './announcements.js';
import { notificationOf } from './messages.js';
import {
  insertEmails, insertNotifications, insertSms, lockThrottles, pruneInboxes, recordThrottledEmails, subjectNamesOf, unsentOf, unsentThrottledEmailsOf, upsertOutbids,
  type DeliveryKey, type NewEmail, type NewSms, type NotificationRecord,
} from './repository.js';
import type { NewNotification } from './messages.js';
import { emailMessageId } from './emails.js';
import { smsTextOf } from './sms.js';
import { retentionOf, type Retention } from './inbox.js';
import type { Config } from '../platform/config.js';
import { Preferences } from './preferences.js';

const isOutbid = (n: NewNotification) => n.type === 'auction.outbid';
const auctionOf = (n: NewNotification) => String(n.data.auctionId);
const priceOf = (n: NewNotification) => Number(n.data.price);

/** Of several outbids of one buyer on one auction, the one with the highest price (they tell the same thing, the latest the best). */
function latestOutbids(notes: NewNotification[]): NewNotification[] {
  const latest = new Map<string, NewNotification>();
  for (const n of notes.filter(isOutbid)) {
    const pair = `${n.recipientId}\u0000${auctionOf(n)}`;
    const kept = latest.get(pair);
    if (!kept || priceOf(n) > priceOf(kept)) latest.set(pair, n);
  }
  return [...notes.filter((n) => !isOutbid(n)), ...latest.values()];
}

export interface TellSettings {
  retention: Retention;
  outbidEmailWindowMs: number;
  /** Recipients a fan-out tells per step, and most parts it is split into (src/notifications/fan-out.ts). */
  fanOutChunkSize: number;
  fanOutParts: number;
  /** The wall clock quiet hours are read by (tests shift it). */
  clock?: () => number;
}

export const tellSettingsOf = (cfg: Config): TellSettings => ({
  retention: retentionOf(cfg), outbidEmailWindowMs: cfg.STAMPEDE_OUTBID_EMAIL_WINDOW_MS, fanOutChunkSize: cfg.STAMPEDE_FANOUT_CHUNK, fanOutParts: cfg.STAMPEDE_FANOUT_PARTS,
});

export class Notifications {
  private readonly preferences: Preferences;
  private readonly retention: Retention;
  private readonly clock: () => number;

  constructor(private readonly pool: Pool, private readonly settings: TellSettings) {
    this.retention = settings.retention;
    this.clock = settings.clock ?? Date.now;
    this.preferences = new Preferences(pool);
  }

  /**
   * Writes the inbox rows and records the e-mails and SMS of these
   * announcements that the buyers want, in one transaction; returns the
   * inbox rows that are new and the e-mails and SMS of these events not
   * sent yet.
   */
  async tell(announcements: Announcement[]): Promise<{ created: NotificationRecord[]; emailsToSend: DeliveryKey[]; smsToSend: DeliveryKey[] }> {
    const once = [...new Map(announcements.map((a) => [`${a.eventId}\u0000${a.data.buyerId}`, a])).values()];
    const subjects = once.map(subjectOf);
    const idsOf = (kind: 'auction' | 'sale') => [...new Set(subjects.filter((s) => s.kind === kind).map((s) => s.id))];
    const names = await subjectNamesOf(this.pool, { auctions: idsOf('auction'), sales: idsOf('sale') });
    const notes = latestOutbids(once.map((a, i) => {
      const { kind, id } = subjects[i]!;
      const name = names.get(id);
      // Settlement announces only what it found in Postgres (an auction, a sale's order): no retry can make this one known.
      if (!name) throw new PermanentError(`${a.type} ${a.eventId} names an unknown ${kind} ${id}`);
      return notificationOf(a, name);
    }));
    const preferences = await this.preferences.of([...new Set(notes.map((n) => n.recipientId))]);
    const inApp = notes.filter((n) => preferences.get(n.recipientId)!.wants(n.type, 'in_app'));
    const emails: NewEmail[] = [];
    const texts: NewSms[] = [];
    const now = this.clock();
    for (const n of notes) {
      const p = preferences.get(n.recipientId)!;
      // In the buyer's quiet hours, e-mail and SMS wait for their end; the inbox never does.
      const notBefore = p.quietUntil(now);
      if (p.wants(n.type, 'email') && p.email !== null) {
        emails.push({ eventId: n.eventId, recipientId: n.recipientId, type: n.type, address: p.email, subject: n.title, body: n.body, messageId: emailMessageId(n), notBefore, throttleKey: isOutbid(n) ? auctionOf(n) : null });
      }
      if (p.wants(n.type, 'sms') && p.phone !== null) {
        texts.push({ eventId: n.eventId, recipientId: n.recipientId, type: n.type, phone: p.phone, body: smsTextOf(n.title, n.body), notBefore });
      }
    }
    const [throttled, plain] = [emails.filter((e) => e.throttleKey !== null), emails.filter((e) => e.throttleKey === null)];
    return inTransaction(this.pool, async (tx) => {
      await lockThrottles(tx, notes.filter(isOutbid).map((n) => ({ recipientId: n.recipientId, key: auctionOf(n) })));
      const outbids = await upsertOutbids(tx, inApp.filter(isOutbid));
      const created = [...await insertNotifications(tx, inApp.filter((n) => !isOutbid(n))), ...outbids];
      // An outbid older than the buyer's item (a redelivery, a late one) tells nothing new: no e-mail's words change for it.
      const newer = new Set(outbids.map((n) => n.eventId));
      const wantsInApp = new Set(inApp.map((n) => n.eventId));
      await recordThrottledEmails(tx, throttled.filter((e) => newer.has(e.eventId) || !wantsInApp.has(e.eventId)), this.settings.outbidEmailWindowMs);
      // The cap, for the inboxes that just grew (age is swept by the scheduler: src/notifications/retention.ts).
      await pruneInboxes(tx, [...new Set(created.map((n) => n.recipientId))], this.retention.cap);
      await insertEmails(tx, plain);
      await insertSms(tx, texts);
      // Asked for again on every delivery until sent: a crash after this commit and before the request was confirmed loses none.
      const emailsToSend = [...await unsentOf(tx, 'email', plain), ...await unsentThrottledEmailsOf(tx, throttled)];
      const smsToSend = await unsentOf(tx, 'sms', texts);
      return { created, emailsToSend, smsToSend };
    });
  }
}
