/**
 * 8. Webhooks: sellers' deliveries to a local receiver (node:http in this
 * process) with 100 endpoints, one of them dead (it never answers: each
 * attempt holds a slot until STAMPEDE_WEBHOOK_TIMEOUT_MS) and one slow
 * (answers after BENCH_WEBHOOK_SLOW_MS). Every endpoint subscribes to
 * purchase.confirmed; BENCH_WEBHOOK_EVENTS announcements are published as
 * order settlement publishes them, and the webhooks worker runs as its own
 * `stampede worker` (STAMPEDE_WORKER_QUEUES=webhooks). Measured: deliveries
 * per second to the 98 healthy endpoints (first publish to last delivery),
 * and p50/p99 from the event's acceptance (its `time`) to its delivery, for
 * the healthy endpoints and for the slow one. Target: >= 2,000
 * deliveries/s, and the dead and slow endpoints do not move the others' p99:
 * the same run first delivers to the 98 healthy endpoints alone (8a, the
 * control), then to all 100 (8b), and compares the healthy p99 of the two.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSettlementRole, stopChild } from '../processes.js';
import type { Phase } from '../results.js';
import { env, log, type Bench, type Findings } from './context.js';
import { letTheHostSettle } from './setup.js';
import { WebhookEndpoints } from '../../../src/webhooks/endpoints.js';
import { publisherOf } from '../../../src/platform/messaging/publisher.js';
import type { CloudEvent } from '../../../src/platform/messaging/events.js';
import { newPurchaseId, newSaleId, newUserId } from '../../../src/platform/ids.js';
import { cfg } from './context.js';
import { allQueues } from '../../../src/platform/messaging/topology.js';

const ENDPOINTS = 100;
const EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 400);
const SLOW_MS = Number(process.env.BENCH_WEBHOOK_SLOW_MS ?? 1_000);
const TARGET = 2_000;
const TIMEOUT_MS = 300_000;

const quantile = (sorted: number[], q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);

export interface WebhooksFigures {
  /** The 100 endpoints' run (8b). */
  phase: Phase;
  /** The healthy endpoints' p99 alone (8a) and beside the dead and slow ones (8b). */
  controlP99: number;
  withFaultyP99: number;
}

export async function runWebhooksPhase(bench: Bench, findings: Findings): Promise<WebhooksFigures> {
  const control = await deliveries(bench, findings, false);
  const withFaulty = await deliveries(bench, findings, true);
  // The phase's events name a sale that does not exist; every other queue bound to purchase.confirmed (the
  // notifier's) holds them too, and a later phase's notifier would dead-letter them while it is measured.
  const ch = await bench.amqp.createChannel();
  for (const q of allQueues(cfg.topology)) await ch.purgeQueue(q.queue);
  await ch.close();
  const ratio = withFaulty.p99 / Math.max(control.p99, 1);
  withFaulty.note += `; healthy p99 beside the dead and slow endpoints ${withFaulty.p99} ms against ${control.p99} ms without them (8a): ${ratio.toFixed(2)}×`;
  return { phase: withFaulty, controlP99: control.p99, withFaultyP99: withFaulty.p99 };
}

/** One burst of EVENTS events to the 98 healthy endpoints, and to the dead and slow ones when `faulty`. */
async function deliveries(bench: Bench, findings: Findings, faulty: boolean): Promise<Phase> {
  const hanging: ServerResponse[] = [];
  const healthyLatencies: number[] = [];
  const slowLatencies: number[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let lastHealthyAt = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      if (path === '/dead') {
        hanging.push(res);
        return;
      }
      const at = Date.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { time: string };
      const key = `${path} ${String(req.headers['webhook-id'])}`;
      if (seen.has(key)) duplicates++;
      seen.add(key);
      const latency = at - Date.parse(body.time);
      if (path === '/slow') {
        slowLatencies.push(latency);
        setTimeout(() => res.writeHead(200).end(), SLOW_MS);
        return;
      }
      healthyLatencies.push(latency);
      lastHealthyAt = at;
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await bench.pool.query('DELETE FROM webhook_endpoints');
  const endpoints = new WebhookEndpoints(bench.pool, { allowPrivate: true, httpsOnly: false, secretOverlapMs: 0 });
  for (let i = faulty ? 0 : 2; i < ENDPOINTS; i++) {
    const path = i === 0 ? '/dead' : i === 1 ? '/slow' : `/ok/${i}`;
    await endpoints.register({ url: `${base}${path}`, events: ['purchase.confirmed'] }, { role: 'operator', userId: null });
  }
  await letTheHostSettle(bench);
  const worker = await startSettlementRole({ ...env, STAMPEDE_WORKER_QUEUES: 'webhooks', STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' }, 'worker');
  try {
    const saleId = newSaleId();
    const buyerId = newUserId();
    const ch = await bench.amqp.createConfirmChannel();
    const started = Date.now();
    const events: CloudEvent[] = Array.from({ length: EVENTS }, () => {
      const purchaseId = newPurchaseId(saleId);
      return {
        specversion: '1.0', id: `${purchaseId}:confirmed`, source: 'stampede:order-settlement', type: 'stampede.purchase.confirmed.v1', time: new Date().toISOString(),
        subject: saleId, datacontenttype: 'application/json',
        data: { purchaseId, saleId, buyerId, quantity: 1, unitPrice: 100, currency: 'EUR', amount: 100, settledAt: Date.now() },
      };
    });
    await publisherOf(ch).publishEventBatches(cfg.topology.exchange, events, 100);
    await ch.close();
    const expected = EVENTS * (ENDPOINTS - 2);
    while (healthyLatencies.length < expected) {
      if (Date.now() - started > TIMEOUT_MS) throw new Error(`webhooks: ${healthyLatencies.length} of ${expected} deliveries after ${TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (lastHealthyAt - started) / 1000;
    const healthy = [...healthyLatencies].sort((a, b) => a - b);
    const slow = [...slowLatencies].sort((a, b) => a - b);
    const rps = Math.round(expected / seconds);
    if (duplicates > 0) findings.violations.push(`webhooks: ${duplicates} messages delivered twice as new`);
    const phase: Phase = {
      name: faulty ? `8b. webhooks: ${EVENTS} events to ${ENDPOINTS} endpoints (1 dead, 1 slow)` : `8a. webhooks: ${EVENTS} events to the ${ENDPOINTS - 2} healthy endpoints alone (the control)`, requests: expected, durationS: seconds, rps,
      p50: quantile(healthy, 0.5), p99: quantile(healthy, 0.99), max: healthy.at(-1) ?? 0, statuses: { delivered: expected, slow: slow.length, dead: hanging.length },
      note: `deliveries/s to the 98 healthy endpoints, first publish to last delivery (target >= ${TARGET}: ${rps >= TARGET ? 'met' : 'MISSED'}); p50/p99/max: acceptance -> delivery (ms) at the healthy endpoints; ${faulty ? `slow endpoint (${SLOW_MS} ms per answer): ${slow.length} delivered, p99 ${quantile(slow, 0.99)} ms; dead endpoint: ${hanging.length} requests held; ` : ''}per-endpoint concurrency ${cfg.STAMPEDE_WEBHOOK_ENDPOINT_CONCURRENCY}, total ${cfg.STAMPEDE_WEBHOOK_CONCURRENCY}`,
    };
    findings.phases.push(phase);
    log.info(phase, 'webhooks');
    return phase;
  } finally {
    await stopChild(worker);
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await bench.pool.query('DELETE FROM webhook_endpoints');
  }
}
