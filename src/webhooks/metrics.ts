/** The webhooks' metrics: delivery attempts by outcome, counted by the dispatcher of this process. */
import { countersFrom, gaugesFrom, type LabelValues, type Registry } from '../platform/metrics/registry.js';
import type { WebhookDispatcher } from './dispatcher.js';

export function registerWebhookMetrics(registry: Registry, dispatcher: WebhookDispatcher): void {
  countersFrom(registry, 'stampede_webhook_attempts_total', 'Webhook delivery attempts by outcome: succeeded (2xx), retried (failed, another attempt scheduled), failed (the last attempt of its schedule, or 410 Gone).', ['outcome'], () =>
    Object.entries(dispatcher.attempts).map(([outcome, n]): [LabelValues, number] => [{ outcome }, n]));
  gaugesFrom(registry, 'stampede_webhook_requests_in_flight', 'Webhook requests this process has open now.', [], () => [[{}, dispatcher.requestsInFlight]]);
}
