/**
 * HTTP requests by method, route (the pattern it matched, e.g.
 * `/v1/sales/:id/purchases`; `unmatched` for none) and status. The server
 * counts into plain numbers per route; the counter reads them at scrape time.
 */
import { countersFrom, type Registry } from './registry.js';

/** Counts one route's answers: call it with each answer's status. */
export type StatusCounter = (status: number) => void;
/** Gives each route its counter. */
export type RequestCounters = (method: string, route: string) => StatusCounter;

export function requestCounters(registry: Registry): RequestCounters {
  const routes: { method: string; route: string; statuses: Map<number, number> }[] = [];
  countersFrom(registry, 'stampede_http_requests_total', 'HTTP requests answered, by method, route pattern and status.', ['method', 'route', 'status'], function* () {
    for (const r of routes) for (const [status, n] of r.statuses) yield [{ method: r.method, route: r.route, status: String(status) }, n];
  });
  return (method, route) => {
    const statuses = new Map<number, number>();
    routes.push({ method, route, statuses });
    return (status) => void statuses.set(status, (statuses.get(status) ?? 0) + 1);
  };
}
