/**
 * Prometheus metrics (prom-client): one registry per role, every series
 * labelled with the role, Node's own metrics (event-loop lag, GC, heap, CPU)
 * included. The api answers GET /metrics on its own port; the relay,
 * worker, notifier and scheduler each serve it on a port of their own
 * (STAMPEDE_<ROLE>_METRICS_PORT, see serveMetrics).
 *
 * Counting costs the hot path as little as it can: the products keep plain
 * numbers (a field incremented where the thing happens), and the metrics
 * read them when Prometheus scrapes (`collect`), as they read queue depths
 * and outbox lag then, never on a timer. Only what has to be seen one by one
 * (a latency) is observed as it happens.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import type { Logger } from '../log.js';

export type Registry = client.Registry;
export type LabelValues = Record<string, string>;

/** A role's registry: its series labelled `role`, with Node's default metrics. */
export function createRegistry(role: string): Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels({ role });
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  return registry;
}

/** Latency buckets in seconds, from half a millisecond to ten seconds. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A counter whose values are read at scrape time: `read` returns each label
 * set with its total so far (a number that only grows, kept by the product).
 */
export function countersFrom(registry: Registry, name: string, help: string, labelNames: string[], read: () => Iterable<[LabelValues, number]>): void {
  new client.Counter({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/**
 * A gauge read at scrape time (`read` may ask Redis or the broker). When the
 * read fails the gauge has no samples this scrape, and the rest of the
 * scrape is served: an outage must not hide every other metric (the
 * dependency's own gauge says what is down).
 */
export function gaugesFrom(registry: Registry, name: string, help: string, labelNames: string[], read: () => Promise<Iterable<[LabelValues, number]>> | Iterable<[LabelValues, number]>): void {
  new client.Gauge({
    name, help, labelNames, registers: [registry],
    async collect() {
      this.reset();
      let samples: Iterable<[LabelValues, number]>;
      try {
        samples = await read();
      } catch {
        return;
      }
      for (const [labels, value] of samples) this.set(labels, value);
    },
  });
}

export function histogram(registry: Registry, name: string, help: string, labelNames: string[] = [], buckets = LATENCY_BUCKETS): client.Histogram {
  return new client.Histogram({ name, help, labelNames, buckets, registers: [registry] });
}

/**
 * One read of something several gauges show, shared by the gauges of one
 * scrape: a read in flight is shared, and the next scrape reads afresh.
 */
export function sharedRead<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    if (inFlight) return inFlight;
    const value = read();
    inFlight = value;
    const done = () => void (inFlight = undefined);
    value.then(done, done);
    return value;
  };
}

/** The text Prometheus scrapes, and its content type. */
export async function exposition(registry: Registry): Promise<{ contentType: string; text: string }> {
  return { contentType: registry.contentType, text: await registry.metrics() };
}

export interface MetricsServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics on host:port (node:http: it answers a scrape every
 * few seconds, nothing on a hot path); anything else is 404. A scrape that
 * fails (Redis or the broker down) answers 503 and logs why.
 */
export async function serveMetrics(registry: Registry, host: string, port: number, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    exposition(registry).then(
      ({ contentType, text }) => res.writeHead(200, { 'content-type': contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'metrics: a scrape failed');
        res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ port: bound, host }, 'metrics listening');
  return {
    port: bound,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
