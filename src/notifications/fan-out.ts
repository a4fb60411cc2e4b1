/**
 * Fan-out: one notification told to an audience (a collection's followers,
 * a sale's watchers, or listed buyers), however large, each recipient's
 * preferences applied (src/notifications/preferences.ts: type and channel
 * switches, an address for e-mail and a phone for SMS, quiet hours deferring
 * both).
 *
 * A fan-out is recorded first (notification_fanouts, keyed by the event id:
 * recording it again changes nothing) and then proceeds in steps. Each step
 * tells the next chunk of the audience in buyer id order in one
 * transaction: it locks the fan-out, reads the chunk after the cursor,
 * writes the inbox rows in one INSERT (the notification once, the
 * recipients as one array, those told already skipped), the e-mails and
 * SMS with COPY, and moves the cursor, so
 * a step that dies tells nothing and the next one starts where the last
 * committed chunk ended; no transaction holds more than a chunk. After the
 * commit the step starts the live push of the chunk's new rows (one
 * pipeline, at most one chunk's in flight: the next chunk is told
 * meanwhile and waits for it before pushing its own) and asks the e-mail and SMS queues for the chunk's messages, waiting for
 * the broker's confirms before it records them asked for; a step that died
 * between the two asks for them again first. Two steps of one fan-out
 * never run at once (the second finds it locked and leaves it to the first).
 *
 * The notifications worker runs a fan-out one step per message
 * (notification.fanout, fanOutStepOf), so a million recipients never hold
 * the queue, and a worker that dies mid-way leaves the step's message
 * unacked: it is delivered again and the fan-out resumes from its cursor.
 */
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { AppError } from '../platform/errors.js';
import { EVENTS } from '../events/catalogue.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import { requestOf } from './channel-worker.js';
import { emailMessageId } from './emails.js';
import { keptSince, type Retention } from './inbox.js';
import type { NewNotification } from './messages.js';
import { Preferences } from './preferences.js';
import type { LivePush } from './push.js';
import {
  audienceAfter, copyEmails, copySms, findFanOut, insertBroadcastNotifications, insertFanOut, lockFanOut, pruneInboxes,
  recordChunkTold, recordFanOutFinished, recordRequestedThrough, toldBetween, unfinishedFanOuts, unsentBetween,
  type AudienceRecord, type FanOutCountsRecord, type FanOutRecord, type NewEmail, type NewSms, type NotificationRecord,
} from './repository.js';
import { smsTextOf } from './sms.js';
import type { Channel, NotificationTypeName } from './types.js';

/** The one notification a fan-out tells everyone. */
export interface Broadcast {
  /** The event it tells of: with each recipient, the key of their inbox row, e-mail and SMS. */
  eventId: string;
  type: NotificationTypeName;
  title: string;
  body: string;
  data: Record<string, unknown>;
  /** The channels it goes out on instead of its type's defaults (an operator's announcement names them); buyers' switches still apply. */
  channels?: Channel[];
}

export type Audience = AudienceRecord;

/** Per fan-out: buyers of the audience reached, inbox rows written, e-mails and SMS recorded. */
export type FanOutCounts = FanOutCountsRecord;

export interface FanOutProgress extends FanOutCounts {
  eventId: string;
  finished: boolean;
  createdAt: Date;
  finishedAt: Date | null;
}

/** What one step did: the counts of the chunk it told, the last buyer id told so far, and whether the fan-out is finished ('busy': another step holds it). */
export type StepOutcome = { told: FanOutCounts; toldThrough: string; finished: boolean } | 'busy' | 'unknown';

/** Publishes e-mail and SMS requests; resolves once the broker confirmed every one. */
export type RequestPublisher = (requests: CloudEvent[]) => Promise<void>;

/** Most buyers a `{ buyerIds }` audience may list (larger audiences are collections or sales). */
export const MAX_LISTED_RECIPIENTS = 10_000;

export interface FanOutSettings {
  /** Recipients told per step (one transaction). */
  chunkSize: number;
  retention: Retention;
  /** The wall clock quiet hours are read by (tests shift it). */
  clock?: () => number;
}

const NONE: FanOutCounts = { recipients: 0, inApp: 0, email: 0, sms: 0 };

const progressOf = (f: FanOutRecord): FanOutProgress => ({
  eventId: f.eventId, recipients: f.recipients, inApp: f.inApp, email: f.email, sms: f.sms, finished: f.finishedAt !== null,
  createdAt: f.createdAt, finishedAt: f.finishedAt,
});

/** The message that asks the notifications worker for a fan-out's next step; its id names the step, so a redelivery is the same message. */
export function fanOutStepOf(eventId: string, toldThrough = '', time = new Date()): CloudEvent<{ eventId: string }> {
  return {
    specversion: '1.0', id: `${eventId}:fanout:${toldThrough}`, source: 'stampede:notifications', type: EVENTS.notificationFanOut.type,
    time: time.toISOString(), datacontenttype: 'application/json', data: { eventId },
  };
}

function checkAudience(audience: Audience): void {
  if ('buyerIds' in audience && audience.buyerIds.length > MAX_LISTED_RECIPIENTS) {
    throw AppError.invalid('/audience/buyerIds', `must list at most ${MAX_LISTED_RECIPIENTS} buyers`);
  }
}

export class FanOut {
  private readonly preferences: Preferences;
  private readonly clock: () => number;
  /** The live push of the last chunk: the next chunk is told meanwhile, and waits for it before pushing its own (one chunk in flight). */
  private pushing: Promise<void> = Promise.resolve();

  constructor(private readonly pool: Pool, private readonly settings: FanOutSettings, private readonly push?: LivePush) {
    this.preferences = new Preferences(pool);
    this.clock = settings.clock ?? Date.now;
  }

  /** Records a fan-out to run; true when new (one recorded for this event id already is kept as it is). */
  async record(broadcast: Broadcast, audience: Audience): Promise<boolean> {
    checkAudience(audience);
    return insertFanOut(this.pool, { ...broadcast, audience });
  }

  /** Records the fan-out and runs it to its end here, step after step (for callers that are not the notifications worker). */
  async tell(broadcast: Broadcast, audience: Audience, publish: RequestPublisher): Promise<FanOutProgress> {
    await this.record(broadcast, audience);
    return this.finish(broadcast.eventId, publish);
  }

  /** Runs a recorded fan-out's steps until it is finished (waiting out another holder's step). */
  async finish(eventId: string, publish: RequestPublisher): Promise<FanOutProgress> {
    for (;;) {
      const outcome = await this.step(eventId, publish);
      if (outcome === 'unknown') throw new Error(`no fan-out is recorded for ${eventId}`);
      if (outcome === 'busy') await new Promise((r) => setTimeout(r, 20));
      else if (outcome.finished) return (await this.progress(eventId))!;
    }
  }

  /** The fan-out's counts so far, or undefined when none is recorded for the event. */
  async progress(eventId: string): Promise<FanOutProgress | undefined> {
    const f = await findFanOut(this.pool, eventId);
    return f && progressOf(f);
  }

  /** The event ids of the fan-outs not finished, oldest first. */
  unfinished(): Promise<string[]> {
    return unfinishedFanOuts(this.pool);
  }

  /** A step of each fan-out not finished, named after where it stands (for a worker starting: see NotificationsWorker). */
  async resumeSteps(time = new Date()): Promise<CloudEvent<{ eventId: string }>[]> {
    const steps: CloudEvent<{ eventId: string }>[] = [];
    for (const eventId of await this.unfinished()) {
      const f = await findFanOut(this.pool, eventId);
      if (f && !f.finishedAt) steps.push(fanOutStepOf(eventId, f.toldThrough, time));
    }
    return steps;
  }

  /** Tells the next chunk (see the module's comment). */
  async step(eventId: string, publish: RequestPublisher): Promise<StepOutcome> {
    const before = await findFanOut(this.pool, eventId);
    if (!before) return 'unknown';
    // A step that died after its commit and before the broker confirmed its requests.
    if (before.requestedThrough < before.toldThrough) await this.request(eventId, before.requestedThrough, before.toldThrough, publish);
    if (before.finishedAt) return { told: NONE, toldThrough: before.toldThrough, finished: true };
    const chunk = await inTransaction(this.pool, async (tx) => {
      const f = await lockFanOut(tx, eventId);
      if (!f) return 'busy' as const;
      if (f.finishedAt) return { told: NONE, finished: true, after: f.toldThrough, through: f.toldThrough };
      const ids = await audienceAfter(tx, f.audience, f.toldThrough, this.settings.chunkSize);
      const finished = ids.length < this.settings.chunkSize;
      if (finished) await recordFanOutFinished(tx, eventId);
      if (ids.length === 0) return { told: NONE, finished, after: f.toldThrough, through: f.toldThrough };
      const after = f.toldThrough;
      const through = ids[ids.length - 1]!;
      const { notes, emails, texts } = await this.addressed(f, ids);
      // Under the lock only this step writes the event's rows of the chunk; what is there (told outside a fan-out) is not written twice.
      const mailed = await toldBetween(tx, 'email', eventId, after, through);
      const texted = await toldBetween(tx, 'sms', eventId, after, through);
      const newEmails = emails.filter((e) => !mailed.has(e.recipientId));
      const newTexts = texts.filter((m) => !texted.has(m.recipientId));
      const written = await insertBroadcastNotifications(tx, { eventId, type: f.type, title: f.title, body: f.body, data: f.data }, notes.map((n) => n.recipientId));
      const newNotes: NotificationRecord[] = written.map((w) => ({ eventId, recipientId: w.recipientId, type: f.type, title: f.title, body: f.body, data: f.data, seq: w.seq, createdAt: w.createdAt, readAt: null }));
      await copyEmails(tx, newEmails);
      await copySms(tx, newTexts);
      await pruneInboxes(tx, newNotes.map((n) => n.recipientId), this.settings.retention.cap, keptSince(this.settings.retention));
      const told = { recipients: ids.length, inApp: newNotes.length, email: newEmails.length, sms: newTexts.length };
      await recordChunkTold(tx, eventId, through, told);
      return { told, finished, after, through, notes: newNotes };
    });
    if (chunk === 'busy') return 'busy';
    if (chunk.through > chunk.after) {
      if (this.push && chunk.notes && chunk.notes.length > 0) await this.pushLive(chunk.notes);
      await this.request(eventId, chunk.after, chunk.through, publish);
    }
    if (chunk.finished) await this.pushing;
    return { told: chunk.told, toldThrough: chunk.through, finished: chunk.finished };
  }

  /** Starts the chunk's live push once the last one's is done; the rows are as written, with the seq and time Postgres gave them. */
  private async pushLive(created: NotificationRecord[]): Promise<void> {
    await this.pushing;
    this.pushing = this.push!.publish(created);
  }

  /** The inbox rows, e-mails and SMS these recipients want of the fan-out's notification. */
  private async addressed(f: FanOutRecord, ids: string[]): Promise<{ notes: NewNotification[]; emails: NewEmail[]; texts: NewSms[] }> {
    const preferences = await this.preferences.of(ids);
    const now = this.clock();
    const notes: NewNotification[] = [];
    const emails: NewEmail[] = [];
    const texts: NewSms[] = [];
    for (const recipientId of ids) {
      const p = preferences.get(recipientId)!;
      const n: NewNotification = { eventId: f.eventId, recipientId, type: f.type, title: f.title, body: f.body, data: f.data };
      const channels = f.channels ?? undefined;
      if (p.wants(f.type, 'in_app', channels)) notes.push(n);
      const wantsEmail = p.wants(f.type, 'email', channels) && p.email !== null;
      const wantsSms = p.wants(f.type, 'sms', channels) && p.phone !== null;
      if (!wantsEmail && !wantsSms) continue;
      // In the buyer's quiet hours, e-mail and SMS wait for their end; the inbox never does.
      const notBefore = p.quietUntil(now);
      if (wantsEmail) {
        emails.push({ eventId: f.eventId, recipientId, type: f.type, address: p.email!, subject: f.title, body: f.body, messageId: emailMessageId(n), notBefore, throttleKey: null });
      }
      if (wantsSms) texts.push({ eventId: f.eventId, recipientId, type: f.type, phone: p.phone!, body: smsTextOf(f.title, f.body), notBefore });
    }
    return { notes, emails, texts };
  }

  /** Asks for the unsent e-mails and SMS of the recipients in (after, through], then records them asked for once the broker confirmed. */
  private async request(eventId: string, after: string, through: string, publish: RequestPublisher): Promise<void> {
    const [emails, texts] = await Promise.all([unsentBetween(this.pool, 'email', eventId, after, through), unsentBetween(this.pool, 'sms', eventId, after, through)]);
    if (emails.length + texts.length > 0) await publish([...emails.map((k) => requestOf('email', k)), ...texts.map((k) => requestOf('sms', k))]);
    await recordRequestedThrough(this.pool, eventId, through);
  }
}
