/**
 * Fan-out: one notification told to an audience (a collection's followers,
 * a sale's watchers, or listed buyers), however large, each recipient's
 * preferences applied (src/notifications/preferences.ts: type and channel
 * switches, an address for e-mail and a phone for SMS, quiet hours deferring
 * both).
 *
 * A fan-out is recorded first (notification_fanouts, keyed by the event id:
 * recording it again changes nothing), its audience split into parts of
 * about equal size in buyer id order (notification_fanout_parts; a large
 * audience only: FanOutSettings.parts), and then each part proceeds in
 * steps, the parts side by side. Each step tells the next chunk of its part
 * in one transaction: it locks the part, reads the chunk after the part's
 * cursor, writes the inbox rows in one INSERT (the notification once, the
 * recipients as one array, those told already skipped), the e-mails and SMS
 * with COPY, and moves the cursor, so a step that dies tells nothing and the
 * next one starts where the last committed chunk ended; no transaction holds
 * more than a chunk. After the commit the step starts the live push of the
 * chunk's new rows (one pipeline, each waiting for the push before it, so
 * pushes queue no deeper than the steps running) and asks the e-mail and SMS
 * queues for the chunk's messages, waiting for the broker's confirms before
 * it records them asked for (a chunk with none is recorded asked for as it
 * commits); a step that died between the two asks for them again first.
 * Two steps of one part never run at once (the second finds it locked and
 * leaves it to the first). The fan-out is finished when its last
 * part is.
 *
 * The notifications worker runs a fan-out one step per message
 * (notification.fanout, fanOutStepOf, naming the part), so a million
 * recipients never hold the queue, and a worker that dies mid-way leaves the
 * step's message unacked: it is delivered again and the part resumes from
 * its cursor.
 */
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { AppError } from '../platform/errors.js';
import { EVENTS } from '../events/catalogue.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import { requestOf } from './channel-worker.js';
import { emailMessageId } from './emails.js';
import type { Retention } from './inbox.js';
import type { NewNotification } from './messages.js';
import { BuyerPreferences } from './preferences.js';
import type { LivePush } from './push.js';
import {
  audienceBounds, audienceMembersAfter, copyEmails, copySms, fanOutParts, findFanOut, insertBroadcastNotifications, insertFanOut, lockFanOutPart, pruneInboxes,
  recordChunkTold, recordPartFinished, recordRequestedThrough, toldBetween, unfinishedFanOuts, unsentBetween,
  type AudienceMemberRecord, type AudienceRecord, type FanOutCountsRecord, type FanOutRecord, type NewEmail, type NewSms, type NotificationRecord,
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

/** What one step did: the counts of the chunk it told, the last buyer id of its part told so far, and whether the part is finished ('busy': another step holds it). */
export type StepOutcome = { told: FanOutCounts; toldThrough: string; finished: boolean } | 'busy' | 'unknown';

/** What a step message asks for: the next step of one part of a fan-out. */
export interface FanOutStep {
  eventId: string;
  part: number;
}

/** Publishes e-mail and SMS requests; resolves once the broker confirmed every one. */
export type RequestPublisher = (requests: CloudEvent[]) => Promise<void>;

/** Fewest recipients a part is given (a smaller audience is split into fewer parts, or none). */
export const MIN_PART = 1_000;

/** Most buyers a `{ buyerIds }` audience may list (larger audiences are collections or sales). */
export const MAX_LISTED_RECIPIENTS = 10_000;

export interface FanOutSettings {
  /** Recipients told per step (one transaction). */
  chunkSize: number;
  /** Most parts an audience is split into, told side by side; only an audience of at least MIN_PART (or a chunk, if smaller) per part is split (1, the default: never). */
  parts?: number;
  retention: Retention;
  /** The wall clock quiet hours are read by (tests shift it). */
  clock?: () => number;
}

const NONE: FanOutCounts = { recipients: 0, inApp: 0, email: 0, sms: 0 };

const progressOf = (f: FanOutRecord): FanOutProgress => ({
  eventId: f.eventId, recipients: f.recipients, inApp: f.inApp, email: f.email, sms: f.sms, finished: f.finishedAt !== null,
  createdAt: f.createdAt, finishedAt: f.finishedAt,
});

/** The message that asks the notifications worker for the next step of a fan-out's part; its id names the step, so a redelivery is the same message. */
export function fanOutStepOf(eventId: string, part = 0, toldThrough = '', time = new Date()): CloudEvent<FanOutStep> {
  return {
    specversion: '1.0', id: `${eventId}:fanout:${part}:${toldThrough}`, source: 'stampede:notifications', type: EVENTS.notificationFanOut.type,
    time: time.toISOString(), datacontenttype: 'application/json', data: { eventId, part },
  };
}

function checkAudience(audience: Audience): void {
  if ('buyerIds' in audience && audience.buyerIds.length > MAX_LISTED_RECIPIENTS) {
    throw AppError.invalid('/audience/buyerIds', `must list at most ${MAX_LISTED_RECIPIENTS} buyers`);
  }
}

export class FanOut {
  private readonly clock: () => number;
  /** The live push of the last chunk: the next chunk is told meanwhile, and waits for it before pushing its own (one chunk in flight). */
  private pushing: Promise<void> = Promise.resolve();

  constructor(private readonly pool: Pool, private readonly settings: FanOutSettings, private readonly push?: LivePush) {
    this.clock = settings.clock ?? Date.now;
  }

  /** Records a fan-out to run, its audience split into parts; true when new (one recorded for this event id already is kept as it is). */
  async record(broadcast: Broadcast, audience: Audience): Promise<boolean> {
    checkAudience(audience);
    const parts = this.settings.parts ?? 1;
    return inTransaction(this.pool, async (tx) => {
      const bounds = parts > 1 ? await audienceBounds(tx, audience, parts, Math.min(this.settings.chunkSize, MIN_PART)) : [];
      return insertFanOut(tx, { ...broadcast, audience }, bounds);
    });
  }

  /** Records the fan-out and runs it to its end here, its parts side by side (for callers that are not the notifications worker). */
  async tell(broadcast: Broadcast, audience: Audience, publish: RequestPublisher): Promise<FanOutProgress> {
    await this.record(broadcast, audience);
    return this.finish(broadcast.eventId, publish);
  }

  /** Runs a recorded fan-out's parts until each is finished (waiting out another holder's step), side by side. */
  async finish(eventId: string, publish: RequestPublisher): Promise<FanOutProgress> {
    const parts = await fanOutParts(this.pool, eventId);
    if (parts.length === 0) throw new Error(`no fan-out is recorded for ${eventId}`);
    await Promise.all(parts.map(async ({ part }) => {
      for (;;) {
        const outcome = await this.step(eventId, publish, part);
        if (outcome === 'unknown') throw new Error(`no fan-out is recorded for ${eventId}`);
        if (outcome === 'busy') await new Promise((r) => setTimeout(r, 20));
        else if (outcome.finished) return;
      }
    }));
    // A part another holder was finishing: wait for its commit.
    for (;;) {
      const progress = (await this.progress(eventId))!;
      if (progress.finished) return progress;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The fan-out's counts so far (all its parts), or undefined when none is recorded for the event. */
  async progress(eventId: string): Promise<FanOutProgress | undefined> {
    const f = await findFanOut(this.pool, eventId);
    return f && progressOf(f);
  }

  /** The event ids of the fan-outs not finished, oldest first. */
  unfinished(): Promise<string[]> {
    return unfinishedFanOuts(this.pool);
  }

  /** A step of each unfinished part of this fan-out, named after where it stands (its first steps, when just recorded). */
  async stepsOf(eventId: string, time = new Date()): Promise<CloudEvent<FanOutStep>[]> {
    const parts = await fanOutParts(this.pool, eventId);
    return parts.filter((p) => !p.finishedAt).map((p) => fanOutStepOf(eventId, p.part, p.toldThrough, time));
  }

  /** A step of each unfinished part of every fan-out not finished (for a worker starting: see NotificationsWorker). */
  async resumeSteps(time = new Date()): Promise<CloudEvent<FanOutStep>[]> {
    const steps: CloudEvent<FanOutStep>[] = [];
    for (const eventId of await this.unfinished()) steps.push(...await this.stepsOf(eventId, time));
    return steps;
  }

  /** Tells the next chunk of a part (see the module's comment). */
  async step(eventId: string, publish: RequestPublisher, part = 0): Promise<StepOutcome> {
    const [f, parts] = await Promise.all([findFanOut(this.pool, eventId), fanOutParts(this.pool, eventId)]);
    const before = parts.find((p) => p.part === part);
    if (!f || !before) return 'unknown';
    // A step that died after its commit and before the broker confirmed its requests.
    if (before.requestedThrough < before.toldThrough) await this.request(eventId, part, before.requestedThrough, before.toldThrough, publish);
    if (before.finishedAt) return { told: NONE, toldThrough: before.toldThrough, finished: true };
    const chunk = await inTransaction(this.pool, async (tx) => {
      const p = await lockFanOutPart(tx, eventId, part);
      if (!p) return 'busy' as const;
      if (p.finishedAt) return { told: NONE, finished: true, after: p.toldThrough, through: p.toldThrough };
      const members = await audienceMembersAfter(tx, f.audience, p.toldThrough, this.settings.chunkSize, p.lastId);
      const ids = members.map((m) => m.id);
      const finished = ids.length < this.settings.chunkSize;
      if (finished) await recordPartFinished(tx, eventId, part);
      if (ids.length === 0) return { told: NONE, finished, after: p.toldThrough, through: p.toldThrough };
      const after = p.toldThrough;
      const through = ids[ids.length - 1]!;
      const { notes, emails, texts } = this.addressed(f, members);
      // Under the lock only this step writes the event's rows of the chunk; what is there (told outside a fan-out) is not written twice.
      const mailed = await toldBetween(tx, 'email', eventId, after, through);
      const texted = await toldBetween(tx, 'sms', eventId, after, through);
      const newEmails = emails.filter((e) => !mailed.has(e.recipientId));
      const newTexts = texts.filter((m) => !texted.has(m.recipientId));
      const written = await insertBroadcastNotifications(tx, { eventId, type: f.type, title: f.title, body: f.body, data: f.data }, notes.map((n) => n.recipientId));
      await copyEmails(tx, newEmails);
      await copySms(tx, newTexts);
      await pruneInboxes(tx, written.map((w) => w.recipientId), this.settings.retention.cap);
      const told = { recipients: ids.length, inApp: written.length, email: newEmails.length, sms: newTexts.length };
      await recordChunkTold(tx, eventId, part, after, through, told);
      // One INSERT: every row of the chunk was created at one time.
      const shared = written.length > 0 ? { eventId, type: f.type, title: f.title, body: f.body, data: f.data, createdAt: written[0]!.createdAt, readAt: null } : undefined;
      return { told, finished, after, through, shared, to: written.map((w): [string, number] => [w.recipientId, w.seq]) };
    });
    if (chunk === 'busy') return 'busy';
    if (chunk.through > chunk.after) {
      if (this.push && chunk.shared) await this.pushLive(chunk.shared, chunk.to);
      // A chunk with e-mail or SMS asks for them (one without had its requests recorded with it).
      if (chunk.told.email + chunk.told.sms > 0) await this.request(eventId, part, chunk.after, chunk.through, publish);
    }
    if (chunk.finished) await this.pushing;
    return { told: chunk.told, toldThrough: chunk.through, finished: chunk.finished };
  }

  /** Queues the chunk's live push after the last one's and waits for that one; the rows are as written, with the seq and time Postgres gave them. */
  private async pushLive(n: Omit<NotificationRecord, 'recipientId' | 'seq'>, to: [string, number][]): Promise<void> {
    const before = this.pushing;
    const push = this.push!;
    this.pushing = before.then(() => push.publishShared(n, to));
    await before;
  }

  /** The inbox rows, e-mails and SMS these recipients want of the fan-out's notification. */
  private addressed(f: FanOutRecord, members: AudienceMemberRecord[]): { notes: NewNotification[]; emails: NewEmail[]; texts: NewSms[] } {
    const now = this.clock();
    const notes: NewNotification[] = [];
    const emails: NewEmail[] = [];
    const texts: NewSms[] = [];
    for (const { id: recipientId, set, accountEmail } of members) {
      const p = new BuyerPreferences(set, accountEmail);
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
  private async request(eventId: string, part: number, after: string, through: string, publish: RequestPublisher): Promise<void> {
    const [emails, texts] = await Promise.all([unsentBetween(this.pool, 'email', eventId, after, through), unsentBetween(this.pool, 'sms', eventId, after, through)]);
    if (emails.length + texts.length > 0) await publish([...emails.map((k) => requestOf('email', k)), ...texts.map((k) => requestOf('sms', k))]);
    await recordRequestedThrough(this.pool, eventId, part, through);
  }
}
