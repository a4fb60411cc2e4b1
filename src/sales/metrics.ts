/** Settlement as Prometheus sees it: purchase results by status, and the time from acceptance to settlement. */
import { countersFrom, histogram, type Registry } from '../platform/metrics/registry.js';
import type { OrdersWorker } from './orders-worker.js';

/** Buckets in seconds: a drain's backlog settles seconds to minutes after its purchases were accepted. */
const SETTLEMENT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The observer the orders worker is given (its option `observeSettled`). */
export function settlementLatency(registry: Registry): (seconds: number) => void {
  const h = histogram(registry, 'stampede_settlement_seconds', 'Seconds from a purchase\'s acceptance (Redis TIME, carried in its event) to its settlement in Postgres.', [], SETTLEMENT_BUCKETS);
  return (seconds) => h.observe(seconds);
}

export function registerSettlementMetrics(registry: Registry, worker: OrdersWorker): void {
  countersFrom(registry, 'stampede_orders_settled_total', 'Purchase results settled, by order status: confirmed, failed (with its reason in the order), cancelled. A redelivered event counts again.', ['status'], () =>
    [...worker.results].map(([status, n]) => [{ status }, n]));
}
