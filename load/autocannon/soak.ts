/**
 * `npm run soak`: Stampede under a mixed load for a bounded time (issue 16).
 * Every role runs as `stampede all` runs them (api, relay, a worker settling
 * orders and auctions, the notifier, the scheduler), each in its own
 * process, on the bench's database, Redis and broker prefix. For
 * SOAK_SECONDS (300) at SOAK_RATE requests/s (400), spread evenly:
 *
 *   purchases  a random buyer on one of the accept sales (60 %)
 *   bids       one increment above the last sent, on the auction that
 *              closes next (25 %); auctions close one after another during
 *              the soak, so the scheduler closes and the worker settles them
 *   cancels    of a purchase answered 202 earlier (10 %)
 *   reads      of a purchase's status (5 %)
 *
 * beside SOAK_LIVE_CLIENTS WebSocket clients (each subscribed to its own
 * `user/` topic and to each auction's topic with a chance of 0.3) and a
 * tenth as many SSE streams, a tenth of them replaced every 15 s. The
 * latencies are measured by this process, which also reads every live
 * frame: they bound the api's from above.
 *
 * Every 10 s it reads each role's RSS from /proc. At the end it waits until
 * every accepted purchase is settled and the outboxes are empty, then checks:
 *   - RSS of every role flat: the last minute's median within
 *     max(16 MB, 10 %) of the second minute's;
 *   - every 202 settled: each purchase has its order in Postgres, each one
 *     whose cancel was answered 202 ended cancelled;
 *   - the sales' invariants (Redis against Postgres), every auction closed;
 *   - a reconciliation run (POST /v1/ops/reconciliation) with zero findings.
 * Writes load/results/soak/ (JSON and markdown) and exits 1 on any failure.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Auctions } from '../../src/auctions/auctions.js';
import { saleKeys } from '../../src/sales/keys.js';
import { auditSale } from '../../src/sales/audit.js';
import { projectRoot } from '../../src/platform/paths.js';
import { settings, env, log, type Bench } from './phases/context.js';
import { setUp, tearDown } from './phases/setup.js';
import { startApi, startBackRoles, stopChild } from './processes.js';
import { scenarios } from './scenarios.js';
import { thisMachine, writeReport } from './report.js';
import type { Phase } from './results.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const RATE = Number(process.env.SOAK_RATE ?? 400);
const LIVE_CLIENTS = Number(process.env.SOAK_LIVE_CLIENTS ?? 1000);
const AUCTIONS = 5;
const SAMPLE_MS = 10_000;
const CHURN_MS = 15_000;
const SETTLE_TIMEOUT_MS = 300_000;
const OPERATOR_KEY = env.STAMPEDE_OPERATOR_KEY!;
const base = `http://127.0.0.1:${settings.apiPort}`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const subOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sub as string;

/** What the generator saw: answers by kind and status, the purchases accepted and those whose cancel was accepted. */
const seen = {
  statuses: new Map<string, number>(),
  accepted: [] as { purchaseId: string; token: string }[],
  cancelled: new Set<string>(),
  errors: 0,
  latencies: [] as number[],
};
const count = (kind: string, status: number | string) => seen.statuses.set(`${kind} ${status}`, (seen.statuses.get(`${kind} ${status}`) ?? 0) + 1);

async function call(kind: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json?: Record<string, unknown> }> {
  const started = performance.now();
  try {
    const res = await fetch(`${base}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    seen.latencies.push(performance.now() - started);
    count(kind, res.status);
    if (res.status >= 500) log.error({ kind, path, status: res.status, body: text.slice(0, 300) }, 'soak: server error');
    return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : undefined };
  } catch (err) {
    seen.errors++;
    count(kind, 'error');
    log.error({ kind, path, err: (err as Error).message }, 'soak: request failed');
    return { status: 0 };
  }
}

interface Lot { id: string; endsAt: number; next: number }

/** One request of the mix. */
function oneRequest(bench: Bench, lots: Lot[]): Promise<unknown> {
  const r = Math.random();
  if (r < 0.6) {
    const token = pick(bench.buyerTokens);
    return call('purchase', 'POST', `/v1/sales/${pick(bench.acceptSaleIds)}/purchases`, token, { quantity: 1 }).then((a) => {
      if (a.status === 202) seen.accepted.push({ purchaseId: a.json!.purchaseId as string, token });
    });
  }
  if (r < 0.85) {
    const lot = lots.find((l) => l.endsAt > Date.now() + 1000);
    if (!lot) return call('read', 'GET', '/v1/auctions?limit=5', pick(bench.buyerTokens));
    const amount = lot.next;
    lot.next += scenarios.bidWar.increment;
    return call('bid', 'POST', `/v1/auctions/${lot.id}/bids`, pick(bench.buyerTokens), { amount });
  }
  if (r < 0.95 && seen.accepted.length > 0) {
    const p = seen.accepted[Math.floor(Math.random() * seen.accepted.length)]!;
    return call('cancel', 'DELETE', `/v1/purchases/${p.purchaseId}`, p.token).then((a) => {
      if (a.status === 202) seen.cancelled.add(p.purchaseId);
    });
  }
  const p = seen.accepted.length > 0 ? pick(seen.accepted) : undefined;
  return p ? call('read', 'GET', `/v1/purchases/${p.purchaseId}`, p.token) : Promise.resolve();
}

/** Live clients: WebSockets on their user topic and every lot, SSE streams; replaced a tenth at a time. */
class LiveCrowd {
  private readonly sockets: WebSocket[] = [];
  private readonly streams: http.ClientRequest[] = [];
  frames = 0;
  failures = 0;

  constructor(private readonly tokens: string[], private readonly lots: Lot[]) {}

  private openWs(token: string): void {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/live`, { perMessageDeflate: false });
    ws.on('error', () => void this.failures++);
    ws.once('open', () => ws.send(JSON.stringify({ op: 'auth', token })));
    ws.on('message', (data: Buffer) => {
      this.frames++;
      if (!data.toString('utf8').includes('"authenticated"')) return;
      ws.send(JSON.stringify({ op: 'subscribe', topic: `user/${subOf(token)}` }));
      for (const lot of this.lots) if (Math.random() < 0.3) ws.send(JSON.stringify({ op: 'subscribe', topic: `auction/${lot.id}` }));
    });
    this.sockets.push(ws);
  }

  private openSse(token: string): void {
    const req = http.get(`${base}/v1/notifications/stream`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) this.failures++;
      res.on('data', () => void this.frames++);
      res.on('error', () => undefined);
    });
    req.on('error', () => undefined);
    this.streams.push(req);
  }

  open(n: number): void {
    for (let i = 0; i < n; i++) this.openWs(pick(this.tokens));
    for (let i = 0; i < Math.ceil(n / 10); i++) this.openSse(pick(this.tokens));
  }

  /** Closes a tenth (half with a close frame, half cut) and opens as many new ones. */
  churn(): void {
    const ws = this.sockets.splice(0, Math.ceil(this.sockets.length / 10));
    ws.forEach((s, i) => (i % 2 === 0 ? s.close(1000) : s.terminate()));
    this.streams.splice(0, Math.ceil(this.streams.length / 10)).forEach((r) => r.destroy());
    this.open(ws.length);
  }

  close(): void {
    this.sockets.splice(0).forEach((s) => s.terminate());
    this.streams.splice(0).forEach((r) => r.destroy());
  }
}

const rssMB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

/** Each role's RSS over time; flat when the last minute's median is within max(16 MB, 10 %) of the second minute's. */
function rssVerdicts(samples: { atS: number; rss: Record<string, number> }[]): { role: string; secondMinuteMB: number; lastMinuteMB: number; maxMB: number; flat: boolean }[] {
  const roles = Object.keys(samples[0]?.rss ?? {});
  const lastFrom = SECONDS - 60;
  return roles.map((role) => {
    const second = median(samples.filter((s) => s.atS >= 60 && s.atS < 120).map((s) => s.rss[role]!));
    const last = median(samples.filter((s) => s.atS >= lastFrom).map((s) => s.rss[role]!));
    const maxMB = Math.max(...samples.map((s) => s.rss[role]!));
    return { role, secondMinuteMB: second, lastMinuteMB: last, maxMB, flat: last - second <= Math.max(16, second * 0.1) };
  });
}

async function waitSettled(bench: Bench): Promise<number> {
  const from = Date.now();
  for (;;) {
    const reserved = (await Promise.all(bench.acceptSaleIds.map((id) => bench.redis.hget(saleKeys.sale(id), 'reserved')))).reduce((n, v) => n + Number(v), 0);
    if (reserved === 0 || Date.now() - from > SETTLE_TIMEOUT_MS) return reserved;
    await sleep(250);
  }
}

async function main(): Promise<void> {
  if (SECONDS < 180) throw new Error('SOAK_SECONDS: at least 180 (the RSS verdict compares the second minute with the last)');
  const bench = await setUp();
  const violations: string[] = [];
  const api = await startApi(env, settings.apiPort);
  const back = await startBackRoles(env).catch(async (e) => {
    await stopChild(api);
    throw e;
  });
  const roles = new Map<string, number>([['api', api.pid!], ...back.names.map(([pid, role]): [string, number] => [role, pid])]);
  const lots: Lot[] = [];
  const auctions = new Auctions(bench.pool, bench.redis);
  for (let k = 0; k < AUCTIONS; k++) {
    const endsAt = Date.now() + Math.round(((k + 1) * SECONDS * 1000 * 0.8) / AUCTIONS);
    const a = await auctions.create({
      title: `soak lot ${k}`, currency: 'EUR', startPrice: scenarios.bidWar.startPrice, startsAt: new Date(Date.now() - 1000).toISOString(),
      endsAt: new Date(endsAt).toISOString(), softCloseSeconds: 0, increment: { type: 'absolute', amount: scenarios.bidWar.increment },
    }, { role: 'operator', userId: null });
    lots.push({ id: a.id, endsAt, next: scenarios.bidWar.startPrice });
  }
  const crowd = new LiveCrowd(bench.buyerTokens, lots);
  crowd.open(LIVE_CLIENTS);

  const samples: { atS: number; rss: Record<string, number> }[] = [];
  const started = Date.now();
  const sample = () => samples.push({ atS: Math.round((Date.now() - started) / 1000), rss: Object.fromEntries([...roles].map(([role, pid]) => [role, rssMB(pid)])) });
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  const churner = setInterval(() => crowd.churn(), CHURN_MS);
  log.info({ seconds: SECONDS, rate: RATE, liveClients: LIVE_CLIENTS }, 'soak: started');
  const inFlight = new Set<Promise<unknown>>();
  // Requests leave in ticks of 10 ms, spread over the second.
  for (let sent = 0; Date.now() - started < SECONDS * 1000;) {
    const due = Math.floor(((Date.now() - started) / 1000) * RATE);
    for (; sent < due; sent++) {
      const p = oneRequest(bench, lots).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await sleep(10);
  }
  await Promise.all(inFlight);
  clearInterval(churner);
  sample();
  clearInterval(sampler);
  crowd.close();
  const loadS = (Date.now() - started) / 1000;

  const stillReserved = await waitSettled(bench);
  if (stillReserved > 0) violations.push(`${stillReserved} purchases still reserved ${SETTLE_TIMEOUT_MS / 1000} s after the soak`);
  // Every lot has closed (the last at 80 % of the soak) and been settled by now, or it is a finding.
  const { rows: open } = await bench.pool.query<{ id: string; status: string }>('SELECT id, status FROM auctions WHERE id = ANY($1) AND status <> $2', [lots.map((l) => l.id), 'closed']);
  for (const a of open) violations.push(`auction ${a.id} is ${a.status} after the soak`);

  // Every 202 settled: an order per accepted purchase; a purchase whose cancel was accepted ended cancelled.
  const ids = seen.accepted.map((p) => p.purchaseId);
  const { rows: orders } = await bench.pool.query<{ purchase_id: string; status: string }>('SELECT purchase_id, status FROM orders WHERE purchase_id = ANY($1)', [ids]);
  const statusOf = new Map(orders.map((o) => [o.purchase_id, o.status]));
  const unsettled = ids.filter((id) => !statusOf.has(id));
  if (unsettled.length > 0) violations.push(`${unsettled.length} accepted purchases without an order (e.g. ${unsettled.slice(0, 3).join(', ')})`);
  const notCancelled = [...seen.cancelled].filter((id) => statusOf.get(id) !== 'cancelled');
  if (notCancelled.length > 0) violations.push(`${notCancelled.length} purchases whose cancel was accepted are not cancelled (e.g. ${notCancelled.slice(0, 3).join(', ')})`);
  const byStatus: Record<string, number> = {};
  for (const o of orders) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  for (const id of bench.acceptSaleIds) {
    const a = await auditSale(bench.pool, bench.redis, id, scenarios.acceptPath.perBuyerLimit);
    violations.push(...a.violations.map((v) => `${id}: ${v}`));
  }

  const reconciliation = await fetch(`${base}/v1/ops/reconciliation`, { method: 'POST', headers: { 'x-api-key': OPERATOR_KEY } });
  const report = (await reconciliation.json()) as { findings: number; repaired: number; unrepaired: number; checks: Record<string, { checked: number; found: number }> };
  if (reconciliation.status !== 201) violations.push(`reconciliation answered ${reconciliation.status}`);
  else if (report.findings !== 0) violations.push(`reconciliation found ${report.findings} (repaired ${report.repaired}): ${JSON.stringify(Object.fromEntries(Object.entries(report.checks).map(([c, r]) => [c, r.found])))}`);

  const rss = rssVerdicts(samples);
  for (const r of rss) if (!r.flat) violations.push(`${r.role}: RSS grew from ${r.secondMinuteMB} MB (second minute) to ${r.lastMinuteMB} MB (last minute)`);
  const fiveXX = [...seen.statuses].filter(([k]) => /\s5\d\d$/.test(k)).reduce((n, [, v]) => n + v, 0);
  if (fiveXX > 0 || seen.errors > 0) violations.push(`${fiveXX} 5xx answers and ${seen.errors} failed requests`);

  const lat = [...seen.latencies].sort((a, b) => a - b);
  const at = (q: number) => Math.round(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0);
  const phase: Phase = {
    name: `soak: ${SECONDS} s mixed at ${RATE} req/s, ${LIVE_CLIENTS} WebSockets + ${Math.ceil(LIVE_CLIENTS / 10)} SSE (a tenth replaced every 15 s)`,
    requests: lat.length, durationS: loadS, rps: Math.round(lat.length / loadS), p50: at(0.5), p99: at(0.99), max: Math.round(lat[lat.length - 1] ?? 0),
    statuses: Object.fromEntries([...seen.statuses].sort()),
    note: `RSS MB (second minute -> last minute, max): ${rss.map((r) => `${r.role} ${r.secondMinuteMB} -> ${r.lastMinuteMB} (${r.maxMB})${r.flat ? '' : ' GROWING'}`).join('; ')}`,
  };
  await back.stop();
  await stopChild(api);
  writeReport(join(projectRoot, 'load', 'results', 'soak'), {
    at: new Date().toISOString(), machine: thisMachine(), node: process.version, connections: 0, phases: [phase],
    extra: {
      'purchases accepted (202)': ids.length, 'orders by status': JSON.stringify(byStatus), 'cancels accepted (202)': seen.cancelled.size,
      'live frames received': crowd.frames, 'live connections refused or failed': crowd.failures,
      'reconciliation': reconciliation.status === 201 ? `${report.findings} findings (${Object.entries(report.checks).map(([c, r]) => `${c}: ${r.checked} checked`).join(', ')})` : `answered ${reconciliation.status}`,
      'RSS samples (MB, every 10 s)': JSON.stringify(samples.map((s) => s.rss)),
      'violations': violations.length === 0 ? 0 : violations.join('; '),
    },
    violations,
  });
  await tearDown(bench);
  if (violations.length > 0) {
    process.stderr.write(`\nSOAK FAILED:\n- ${violations.join('\n- ')}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`soak failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
