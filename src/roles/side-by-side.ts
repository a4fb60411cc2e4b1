/**
 * The settings that let several of Stampede's deployments run on one host
 * (the tests, the bench, beside `npm start`): every role's metrics on a free
 * port, and reconciliation only when a test or run asks for it (it would
 * find a test's deliberate corruption, or cost the bench a scan).
 */
export const SIDE_BY_SIDE_ENV: Readonly<Record<string, string>> = {
  STAMPEDE_RELAY_METRICS_PORT: '0',
  STAMPEDE_WORKER_METRICS_PORT: '0',
  STAMPEDE_NOTIFIER_METRICS_PORT: '0',
  STAMPEDE_SCHEDULER_METRICS_PORT: '0',
  STAMPEDE_RECONCILE_INTERVAL_MS: '0',
};
