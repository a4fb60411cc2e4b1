/**
 * The notifications worker: consumes the notifications queue (see
 * BatchConsumer: manual acks, prefetch, batches, retry tiers, dead letters)
 * and tells what arrived together in one transaction per batch (inbox rows
 * and the e-mails to send), then asks the e-mail queue for the e-mails not
 * sent yet; the messages are acked only after the broker confirmed those. Announcements that fail their
 * catalogue schema are poison (dead-lettered at once, with their reason).
 * The new inbox rows (never a redelivered announcement's) are pushed live
 * once committed (src/notifications/push.ts).
 */
import type { Pool } from '../platform/db/pool.js';
import { BatchConsumer, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import type { ConfirmChannel } from '../platform/messaging/amqp.js';
import { publisherOf } from '../platform/messaging/publisher.js';
import { emailRequestOf } from './email-worker.js';
import { parseAnnouncement, type Announcement } from './announcements.js';
import { Notifications } from './notifications.js';
import type { Retention } from './inbox.js';
import type { LivePush } from './push.js';

export interface NotificationsWorkerOptions extends WorkerSettings {
  pool: Pool;
  retention: Retention;
  push: LivePush;
}

export class NotificationsWorker extends BatchConsumer<Announcement> {
  private readonly notifications: Notifications;

  constructor(private readonly deps: NotificationsWorkerOptions) {
    super({ ...deps, name: 'notifications worker', what: 'an announcement', concern: deps.topology.notifications });
    this.notifications = new Notifications(deps.pool, deps.retention);
  }

  protected parse(envelope: JsonObject): Announcement {
    return parseAnnouncement(envelope);
  }

  protected async settle(announcements: Announcement[], pub: ConfirmChannel): Promise<void> {
    const { created, emailsToSend } = await this.notifications.tell(announcements);
    // Not awaited: the push is best-effort (it logs its failures) and the acks need not wait for Redis.
    void this.deps.push.publish(created);
    // Committed; the announcements are acked only once the e-mail queue has the requests.
    await publisherOf(pub).publishEvents(this.deps.topology.exchange, emailsToSend.map((key) => emailRequestOf(key)));
  }
}
