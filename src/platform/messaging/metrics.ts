/** What a role's consumers did since start, per queue: events settled, messages retried and dead-lettered. */
import { countersFrom, type LabelValues, type Registry } from '../metrics/registry.js';
import type { BatchConsumer } from './consumer.js';

export function registerConsumerMetrics(registry: Registry, consumers: BatchConsumer<unknown>[]): void {
  countersFrom(registry, 'stampede_consumer_messages_total', 'What each consumer did since start: events settled (again, for a redelivery), messages sent to a retry tier, messages or events dead-lettered.', ['queue', 'outcome'], function* () {
    for (const c of consumers) {
      const labels = (outcome: string): LabelValues => ({ queue: c.queue, outcome });
      yield [labels('settled'), c.settled];
      yield [labels('retried'), c.retried];
      yield [labels('dead_lettered'), c.deadLettered];
    }
  });
}
