/**
 * A role's metrics endpoint: its registry (labelled with the role), what
 * `register` adds to it, served on the role's own metrics port
 * (STAMPEDE_<ROLE>_METRICS_PORT). Nothing when STAMPEDE_METRICS is false.
 */
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/log.js';
import { createRegistry, serveMetrics, type MetricsServer, type Registry } from '../platform/metrics/registry.js';

export type MetricsRole = 'relay' | 'worker' | 'notifier' | 'scheduler';

const PORTS: Record<MetricsRole, (cfg: Config) => number> = {
  relay: (cfg) => cfg.STAMPEDE_RELAY_METRICS_PORT,
  worker: (cfg) => cfg.STAMPEDE_WORKER_METRICS_PORT,
  notifier: (cfg) => cfg.STAMPEDE_NOTIFIER_METRICS_PORT,
  scheduler: (cfg) => cfg.STAMPEDE_SCHEDULER_METRICS_PORT,
};

/** The role's registry, or undefined when metrics are off. */
export function registryFor(cfg: Config, role: string): Registry | undefined {
  return cfg.STAMPEDE_METRICS ? createRegistry(role) : undefined;
}

export async function serveRoleMetrics(cfg: Config, role: MetricsRole, registry: Registry | undefined, log: Logger): Promise<MetricsServer | undefined> {
  return registry ? serveMetrics(registry, cfg.STAMPEDE_METRICS_HOST, PORTS[role](cfg), log) : undefined;
}
