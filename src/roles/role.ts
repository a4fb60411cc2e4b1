/** What every process role returns: a way to stop it gracefully. */
export interface Role {
  stop(): Promise<void>;
  /** Where its Prometheus metrics are (none when STAMPEDE_METRICS is false). */
  metricsUrl?: string;
}

