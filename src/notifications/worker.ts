/**
 * The notifications worker: consumes the notifications queue (see
 * BatchConsumer: manual acks, prefetch, batches, retry tiers, dead letters)
 * and tells what arrived together in one statement per batch; the messages
 * are acked only after it committed. Announcements that fail their
 * catalogue schema are poison (dead-lettered at once, with their reason).
 */
import type { Pool } from '../platform/db/pool.js';
import { BatchConsumer, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import { parseAnnouncement, type Announcement } from './announcements.js';
import { Notifications } from './notifications.js';
import type { Retention } from './inbox.js';

export interface NotificationsWorkerOptions extends WorkerSettings {
  pool: Pool;
  retention: Retention;
}

export class NotificationsWorker extends BatchConsumer<Announcement> {
  private readonly notifications: Notifications;

  constructor(deps: NotificationsWorkerOptions) {
    super({ ...deps, name: 'notifications worker', what: 'an announcement', concern: deps.topology.notifications });
    this.notifications = new Notifications(deps.pool, deps.retention);
  }

  protected parse(envelope: JsonObject): Announcement {
    return parseAnnouncement(envelope);
  }

  protected async settle(announcements: Announcement[]): Promise<void> {
    await this.notifications.tell(announcements);
  }
}
