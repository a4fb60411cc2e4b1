/** Telling buyers, as Prometheus sees it: what the notifications worker recorded per channel, and what the e-mail and SMS workers did with each request. */
import { countersFrom, type LabelValues, type Registry } from '../platform/metrics/registry.js';
import type { ChannelWorker } from './channel-worker.js';
import type { NotificationsWorker } from './worker.js';

export function registerNotificationMetrics(registry: Registry, notifications: NotificationsWorker | undefined, channels: ChannelWorker[]): void {
  if (notifications) {
    countersFrom(registry, 'stampede_notifications_recorded_total', 'Inbox rows written (in_app), and e-mails and SMS asked of their workers (an unsent one asked again counts again).', ['channel'], () =>
      Object.entries(notifications.told).map(([channel, n]): [LabelValues, number] => [{ channel }, n]));
  }
  if (channels.length > 0) {
    countersFrom(registry, 'stampede_notification_deliveries_total', 'E-mail and SMS requests by outcome: sent, already_sent (found sent), deferred (to the end of quiet hours), failed (retried through the delay tiers, then dead-lettered).', ['channel', 'outcome'], function* () {
      for (const c of channels) for (const [outcome, n] of Object.entries(c.deliveries)) yield [{ channel: c.delivery, outcome }, n];
    });
  }
}
