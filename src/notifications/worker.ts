/**
 * The notifications worker: consumes the notifications queue (see
 * BatchConsumer: manual acks, prefetch, batches, retry tiers, dead letters)
 * and tells what arrived together in one transaction per batch (inbox rows
 * and the e-mails and SMS to send), then asks the e-mail and SMS queues for
 * those not sent yet; the messages are acked only after the broker
 * confirmed those requests. Announcements that fail their
 * catalogue schema are poison (dead-lettered at once, with their reason).
 * The new inbox rows (never a redelivered announcement's) are pushed live
 * once committed (src/notifications/push.ts).
 *
 * What goes to many buyers (auction.created, to the collection's
 * followers) is a fan-out (src/notifications/fan-out.ts): the worker records
 * it and asks for the first step of each of its parts; each step is a
 * message of this queue (notification.fanout) that tells one chunk of its
 * part and asks for the part's next before it is acked, and the steps of a
 * batch run side by side. So a fan-out of a million is many short messages, never one
 * that holds a lane, and announcements keep flowing between its steps.
 *
 * Settlement first: while the orders queue has a backlog the worker waits
 * before each batch, for a while (src/notifications/settlement-first.ts), so
 * telling buyers does not slow the settling of their orders.
 */
import type { Pool } from '../platform/db/pool.js';
import { BatchConsumer, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import type { ConfirmChannel } from '../platform/messaging/amqp.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import { publisherOf } from '../platform/messaging/publisher.js';
import { requestOf } from './channel-worker.js';
import { parseAnnouncement, type Announcement, type NotificationEvent } from './announcements.js';
import { FanOut, fanOutStepOf } from './fan-out.js';
import { DueSends } from './sends.js';
import { SEND_ID } from '../platform/ids.js';
import { createdNotificationOf } from './messages.js';
import { Notifications, type TellSettings } from './notifications.js';
import type { LivePush } from './push.js';
import { SettlementFirst, type SettlementFirstSettings } from './settlement-first.js';

export interface NotificationsWorkerOptions extends WorkerSettings {
  pool: Pool;
  tell: TellSettings;
  push: LivePush;
  /** Waits for the orders queue's backlog before each batch (src/notifications/settlement-first.ts); none: never waits. */
  settlementFirst?: SettlementFirstSettings;
}

const isAnnouncement = (e: NotificationEvent): e is Announcement => e.type !== 'auction.created' && e.type !== 'notification.fanout' && e.type !== 'notification.due';

export class NotificationsWorker extends BatchConsumer<NotificationEvent> {
  private readonly notifications: Notifications;
  readonly fanOut: FanOut;
  private readonly dueSends: DueSends;
  /** Whether the unfinished fan-outs were asked for again since this worker started. */
  private resumed = false;
  readonly settlementFirst?: SettlementFirst;

  constructor(private readonly deps: NotificationsWorkerOptions) {
    super({ ...deps, name: 'notifications worker', what: 'an announcement', concern: deps.topology.notifications });
    this.notifications = new Notifications(deps.pool, deps.tell);
    this.dueSends = new DueSends(deps.pool, deps.tell.clock);
    this.settlementFirst = deps.settlementFirst && deps.settlementFirst.maxWaitMs > 0 ? new SettlementFirst(deps.settlementFirst) : undefined;
    this.fanOut = new FanOut(deps.pool, { chunkSize: deps.tell.fanOutChunkSize, parts: deps.tell.fanOutParts, retention: deps.tell.retention, clock: deps.tell.clock }, deps.push);
  }

  protected parse(envelope: JsonObject): NotificationEvent {
    return parseAnnouncement(envelope);
  }

  /**
   * Asks again for a step of every fan-out not finished (once per start): a
   * step dead-lettered, or a worker that died after its commit and before it
   * asked for the next, would otherwise leave the fan-out stuck. A step
   * asked for twice is harmless: the one that finds the fan-out locked, or
   * finished, asks for nothing more.
   */
  protected override async consuming(pub: ConfirmChannel): Promise<void> {
    if (this.resumed) return;
    const steps = await this.fanOut.resumeSteps();
    if (steps.length > 0) await publisherOf(pub).publishEvents(this.deps.topology.exchange, steps);
    this.resumed = true;
  }

  protected override async ready(pub: ConfirmChannel): Promise<void> {
    await this.settlementFirst?.wait(pub, () => this.isStopping);
  }

  /** Inbox rows written, and e-mails and SMS asked for, since start (a re-ask of an unsent one counts again). */
  readonly told = { in_app: 0, email: 0, sms: 0 };

  protected async settle(events: NotificationEvent[], pub: ConfirmChannel): Promise<void> {
    const publish = (requests: CloudEvent[]) => publisherOf(pub).publishEvents(this.deps.topology.exchange, requests);
    const announcements = events.filter(isAnnouncement);
    if (announcements.length > 0) {
      const { created, emailsToSend, smsToSend } = await this.notifications.tell(announcements);
      this.told.in_app += created.length;
      this.told.email += emailsToSend.length;
      this.told.sms += smsToSend.length;
      // Not awaited: the push is best-effort (it logs its failures) and the acks need not wait for Redis.
      void this.deps.push.publish(created);
      // Committed; the announcements are acked only once the channel queues have the requests.
      await publish([...emailsToSend.map((key) => requestOf('email', key)), ...smsToSend.map((key) => requestOf('sms', key))]);
    }
    const next: CloudEvent[] = [];
    for (const e of events) {
      if (e.type === 'auction.created') {
        // Recorded again on a redelivery changes nothing; the steps asked for again find their parts running or finished.
        await this.fanOut.record({ ...createdNotificationOf(e.eventId, e.data) }, { collection: e.data.collection });
        next.push(...await this.fanOut.stepsOf(e.eventId));
      } else if (e.type === 'notification.due') {
        // A scheduled send the scheduler claimed: one fan-out under its id, unless it was cancelled (or is sent).
        const due = await this.dueSends.start(e.data.sendId);
        if (due) {
          await this.fanOut.record(due.broadcast, due.audience);
          next.push(...await this.fanOut.stepsOf(e.data.sendId));
        }
      }
    }
    // The parts of a fan-out step side by side (each holds its own part's lock and connection).
    await Promise.all(events.map(async (e) => {
      if (e.type !== 'notification.fanout') return;
      const { eventId, part = 0 } = e.data;
      const outcome = await this.fanOut.step(eventId, publish, part);
      if (typeof outcome === 'string') return;
      this.told.in_app += outcome.told.inApp;
      this.told.email += outcome.told.email;
      this.told.sms += outcome.told.sms;
      if (!outcome.finished) next.push(fanOutStepOf(eventId, part, outcome.toldThrough));
      else if (SEND_ID.test(eventId)) {
        const progress = (await this.fanOut.progress(eventId))!;
        if (progress.finished) await this.dueSends.finished(eventId, progress.recipients);
      }
    }));
    if (next.length > 0) await publish(next);
  }
}
