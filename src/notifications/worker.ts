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
 */
import type { Pool } from '../platform/db/pool.js';
import { BatchConsumer, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import type { ConfirmChannel } from '../platform/messaging/amqp.js';
import { publisherOf } from '../platform/messaging/publisher.js';
import { requestOf } from './channel-worker.js';
import { parseAnnouncement, type Announcement } from './announcements.js';
import { Notifications, type TellSettings } from './notifications.js';
import type { LivePush } from './push.js';

export interface NotificationsWorkerOptions extends WorkerSettings {
  pool: Pool;
  tell: TellSettings;
  push: LivePush;
}

export class NotificationsWorker extends BatchConsumer<Announcement> {
  private readonly notifications: Notifications;

  constructor(private readonly deps: NotificationsWorkerOptions) {
    super({ ...deps, name: 'notifications worker', what: 'an announcement', concern: deps.topology.notifications });
    this.notifications = new Notifications(deps.pool, deps.tell);
  }

  protected parse(envelope: JsonObject): Announcement {
    return parseAnnouncement(envelope);
  }

  protected async settle(announcements: Announcement[], pub: ConfirmChannel): Promise<void> {
    const { created, emailsToSend, smsToSend } = await this.notifications.tell(announcements);
    // Not awaited: the push is best-effort (it logs its failures) and the acks need not wait for Redis.
    void this.deps.push.publish(created);
    // Committed; the announcements are acked only once the channel queues have the requests.
    await publisherOf(pub).publishEvents(this.deps.topology.exchange, [
      ...emailsToSend.map((key) => requestOf('email', key)), ...smsToSend.map((key) => requestOf('sms', key)),
    ]);
  }
}
