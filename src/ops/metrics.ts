/**
 * Queues and outboxes as Prometheus sees them, read at scrape time from the
 * broker and Redis (one read shared by the gauges of a scrape): per queue
 * its ready messages and consumers, the dead letters per queue, and per
 * outbox its length, unread and pending entries and the age of its oldest
 * entry not yet relayed (the lag as time).
 */
import { gaugesFrom, sharedRead, type LabelValues, type Registry } from '../platform/metrics/registry.js';
import type { OpsView } from './queues.js';
import type { DeadLetters } from './dead-letters.js';
import { CHECKS } from './findings.js';
import type { Reconciliation } from './reconciliation.js';

/**
 * The latest reconciliation report, read from Postgres at scrape time (any
 * api node shows the same, whichever role or node ran it): its findings per
 * check, repaired or not, and when it ran.
 */
export function registerReconciliationMetrics(registry: Registry, reconciliation: Reconciliation): void {
  const latest = sharedRead(() => reconciliation.latest());
  gaugesFrom(registry, 'stampede_reconciliation_findings', 'Findings of the latest reconciliation run, by check, repaired ("true") or left for an operator ("false").', ['check', 'repaired'], async () => {
    const r = await latest();
    return CHECKS.flatMap((check): [LabelValues, number][] => {
      const c = r?.checks[check];
      return [[{ check, repaired: 'true' }, c?.repaired ?? 0], [{ check, repaired: 'false' }, c ? c.found - c.repaired : 0]];
    });
  });
  gaugesFrom(registry, 'stampede_reconciliation_last_run_timestamp_seconds', 'When the latest reconciliation run finished (Unix time; 0: none yet).', [], async () => {
    const r = await latest();
    return [[{}, r ? Date.parse(r.finishedAt) / 1000 : 0]];
  });
  gaugesFrom(registry, 'stampede_reconciliation_last_run_duration_seconds', 'How long the latest reconciliation run took.', [], async () => {
    const r = await latest();
    return [[{}, r ? r.durationMs / 1000 : 0]];
  });
}

export function registerOpsMetrics(registry: Registry, ops: OpsView, deadLetters: DeadLetters): void {
  gaugesFrom(registry, 'stampede_dead_letters_archived', 'Dead letters the keeper archived in Postgres, by queue and status (waiting for an operator, or replayed).', ['queue', 'status'], async () =>
    (await deadLetters.summary()).flatMap((q): [LabelValues, number][] => [[{ queue: q.queue, status: 'waiting' }, q.waiting], [{ queue: q.queue, status: 'replayed' }, q.replayed]]));
  const view = sharedRead(() => ops.queues());
  const perQueue = (value: (q: Awaited<ReturnType<OpsView['queues']>>['queues'][number]) => number) => async () =>
    (await view()).queues.map((q): [LabelValues, number] => [{ queue: q.queue, concern: q.concern, kind: q.kind }, value(q)]);
  gaugesFrom(registry, 'stampede_queue_messages', 'Messages ready in each queue (main, retry tiers, dead letters).', ['queue', 'concern', 'kind'], perQueue((q) => q.messages));
  gaugesFrom(registry, 'stampede_queue_consumers', 'Consumers of each queue.', ['queue', 'concern', 'kind'], perQueue((q) => q.consumers));
  gaugesFrom(registry, 'stampede_dead_letters', 'Messages in each dead-letter queue, not archived yet (the scheduler\'s keeper moves them to Postgres: stampede_dead_letters_archived).', ['concern'], async () =>
    (await view()).queues.filter((q) => q.kind === 'dead-letter').map((q): [LabelValues, number] => [{ concern: q.concern }, q.messages]));
  const perOutbox = (value: (o: Awaited<ReturnType<OpsView['queues']>>['outboxes'][number]) => number) => async () =>
    (await view()).outboxes.map((o): [LabelValues, number] => [{ stream: o.stream }, value(o)]);
  gaugesFrom(registry, 'stampede_outbox_length', 'Entries in each outbox stream.', ['stream'], perOutbox((o) => o.length));
  gaugesFrom(registry, 'stampede_outbox_unread', 'Outbox entries no relay has read yet.', ['stream'], perOutbox((o) => o.unread));
  gaugesFrom(registry, 'stampede_outbox_pending', 'Outbox entries a relay read and the broker has not confirmed yet.', ['stream'], perOutbox((o) => o.pending));
  gaugesFrom(registry, 'stampede_outbox_oldest_age_seconds', 'Age of the oldest outbox entry not yet relayed (0 when none waits): the relay\'s lag as time.', ['stream'], perOutbox((o) => o.oldestAgeMs / 1000));
}
