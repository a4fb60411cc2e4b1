/** What every load phase reports, read the same way from every autocannon run. */
import type autocannon from 'autocannon';

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  /** Answers by status code, plus connection errors and timeouts. */
  statuses: Record<string, number>;
}

export function statusesOf(r: autocannon.Result): Record<string, number> {
  const statuses: Record<string, number> = {};
  for (const [code, v] of Object.entries((r as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {})) statuses[code] = v.count;
  if (r.errors > 0) statuses.errors = r.errors;
  if (r.timeouts > 0) statuses.timeouts = r.timeouts;
  return statuses;
}

export function resultOf(r: autocannon.Result): LoadResult {
  return {
    requests: r.requests.total, durationS: r.duration, rps: Math.round(r.requests.total / r.duration),
    p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, statuses: statusesOf(r),
  };
}

/** One row of the bench's report (load/results/latest.json's `phases`, latest.md's table). */
export interface Phase extends LoadResult {
  name: string;
  ratioToBaseline?: number;
  note?: string;
  /** CPU time per request (µs) of the processes that served and generated it; steadier than req/s on a shared host. */
  cpuUsPerRequest?: number;
}
