/**
 * 9. End to end: every role running as `stampede all` runs them (api, relay,
 * a worker settling orders and auctions, the notifier, the scheduler), and
 * purchases paced open loop at half the accept path's max (2's rate when it
 * ran, else a 5 s closed loop of its own on this api before the other roles
 * start; BENCH_E2E_RATE overrides) for BENCH_E2E_SECONDS (30): how long a
 * buyer waits from the 202 to `confirmed`, while purchases keep arriving.
 *
 * Measured without adding load: the generator notes each 202's purchase id
 * and the moment it read it (Date.now()); the orders' `settled_at` (the
 * worker's Date.now() as it settles, on the same host's clock) is read from
 * Postgres once the run is over. `settled_at` is taken just before the
 * transaction commits, so the figure leaves out the commit itself (a few
 * ms). The backlog, purchases accepted and not yet settled (the sales'
 * `reserved` in Redis), and the orders queue's depth are sampled once a
 * second; the report gives their max and last sample.
 * Target: p99 ≤ 1 s, the backlog at the end ≤ one second of purchases.
 */
import { saleKeys } from '../../../src/sales/keys.js';
import { Sales } from '../../../src/sales/sales.js';
import { runClosedLoop } from '../closed-loop.js';
import { runPaced } from '../paced.js';
import { startApi, startBackRoles, stopChild } from '../processes.js';
import type { Phase } from '../results.js';
import { cfg, env, log, settings, type Bench, type Findings } from './context.js';
import { rawPurchase } from './api-phases.js';
import { letTheHostSettle } from './setup.js';

const SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 30);
const SETTLE_TIMEOUT_MS = 120_000;

export interface EndToEnd {
  phase: Phase;
  rate: number;
  p99Ms: number;
  backlogMax: number;
  backlogLast: number;
}

const quantile = (sorted: number[], q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `acceptRps`: the accept path's closed-loop max in this run, when it ran. */
export async function runEndToEndPhase(bench: Bench, findings: Findings, acceptRps: number | undefined): Promise<EndToEnd> {
  const n = bench.buyerTokens.length;
  const sales = new Sales(bench.pool, bench.redis);
  // Enough sales that every purchase is a buyer's first on its sale (limit 1), the warm-up and a measuring run included.
  const saleIds: string[] = [];
  const needed = Math.ceil(((acceptRps ?? 20_000) * (SECONDS / 2 + 5) + 20_000) / n) + 1;
  for (let k = 0; k < needed; k++) {
    const s = await sales.create({
      name: `end to end ${k}`, sku: 'BENCH-E2E', unitPrice: 100, currency: 'EUR', stock: n, perBuyerLimit: 1,
      startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(),
    }, { role: 'operator', userId: null });
    saleIds.push(s.id);
  }
  const purchase = (i: number) => ({ path: `/v1/sales/${saleIds[Math.floor(i / n) % saleIds.length]}/purchases`, token: bench.buyerTokens[i % n]! });
  await letTheHostSettle(bench);

  const api = await startApi(env, settings.apiPort);
  let next = 0;
  let roles: Awaited<ReturnType<typeof startBackRoles>> | undefined;
  try {
    let rate = Number(process.env.BENCH_E2E_RATE ?? (acceptRps ? Math.round(acceptRps / 2) : 0));
    if (!rate) {
      // Alone: the accept path's max on this api, before the other roles start (their start settles its backlog).
      const max = await runClosedLoop('9 (max)', `http://127.0.0.1:${settings.apiPort}`, { connections: settings.connections, durationS: 5, pick: (i) => purchase(i) });
      next = max.requests + settings.connections;
      rate = Math.round(max.rps / 2);
      log.info({ max: max.rps, rate }, 'end to end: accept max measured alone');
    }
    roles = await startBackRoles(env);
    const reserved = async () => {
      const values = await Promise.all(saleIds.map((id) => bench.redis.hget(saleKeys.sale(id), 'reserved')));
      return values.reduce((s, v) => s + Number(v), 0);
    };
    const settled = async (timeoutMs: number) => {
      const from = Date.now();
      while ((await reserved()) > 0) {
        if (Date.now() - from > timeoutMs) return false;
        await sleep(100);
      }
      return true;
    };
    // Warm-up: a second of purchases, settled, so every role is up and connected before the measured run.
    const warm = await runPaced({
      host: '127.0.0.1', port: settings.apiPort, connections: 10, rate: 200, durationS: 1,
      request: (i) => rawPurchase(purchase(next + i).path, purchase(next + i).token),
    });
    next += warm.requests + 10;
    if (!(await settled(60_000))) throw new Error('end to end: the warm-up purchases were not settled in 60 s');

    const channel = await bench.amqp.createChannel();
    const backlog: { reserved: number; queued: number }[] = [];
    const sampler = setInterval(() => {
      void Promise.all([reserved(), channel.checkQueue(cfg.topology.orders.queue)])
        .then(([r, q]) => backlog.push({ reserved: r, queued: q.messageCount }))
        .catch((err: Error) => log.warn({ err: err.message }, 'end to end: backlog sample failed'));
    }, 1000);
    const acceptedAt = new Map<string, number>();
    const from = next;
    let run;
    try {
      run = await runPaced({
        host: '127.0.0.1', port: settings.apiPort, connections: settings.connections, rate, durationS: SECONDS,
        request: (i) => {
          const p = purchase(from + i);
          return rawPurchase(p.path, p.token);
        },
        onAnswer: (_i, status, body) => {
          if (status !== 202) return;
          const id = /"purchaseId":"([^"]+)"/.exec(body.toString('latin1'))?.[1];
          if (id) acceptedAt.set(id, Date.now());
        },
      });
    } finally {
      clearInterval(sampler);
    }
    const drained = await settled(SETTLE_TIMEOUT_MS);
    await channel.close();
    if (!drained) findings.violations.push(`end to end: purchases still reserved ${SETTLE_TIMEOUT_MS / 1000} s after the run`);

    const { rows } = await bench.pool.query<{ purchase_id: string; status: string; settled_at: Date }>(
      'SELECT purchase_id, status, settled_at FROM orders WHERE sale_id = ANY($1)', [saleIds]);
    const waits: number[] = [];
    let failed = 0;
    for (const o of rows) {
      const at = acceptedAt.get(o.purchase_id);
      if (at === undefined) continue;
      if (o.status !== 'confirmed') failed++;
      else waits.push(o.settled_at.getTime() - at);
    }
    const missing = acceptedAt.size - waits.length - failed;
    if (missing > 0) findings.violations.push(`end to end: ${missing} accepted purchases with no order`);
    waits.sort((a, b) => a - b);
    const p99Ms = quantile(waits, 0.99);
    const backlogMax = Math.max(0, ...backlog.map((b) => b.reserved));
    const backlogLast = backlog.at(-1)?.reserved ?? 0;
    const queuedMax = Math.max(0, ...backlog.map((b) => b.queued));
    const phase: Phase = {
      name: `9. end to end: purchases paced at ${rate.toLocaleString('en')}/s for ${SECONDS} s, every role running (202 -> confirmed)`,
      requests: run.requests, durationS: run.durationS, rps: Math.round(run.requests / run.durationS),
      p50: quantile(waits, 0.5), p99: p99Ms, max: waits.at(-1) ?? 0, statuses: { ...run.statuses, confirmed: waits.length, failed },
      note: `p50/p99/max: the 202 read by the generator -> the order's settled_at (ms); the 202 itself p50 ${run.p50} ms, p99 ${run.p99} ms; ` +
        `backlog (accepted, not settled) sampled every second: max ${backlogMax.toLocaleString('en')}, last ${backlogLast.toLocaleString('en')} (${backlog.length} samples); ` +
        `orders queue depth max ${queuedMax.toLocaleString('en')}, last ${(backlog.at(-1)?.queued ?? 0).toLocaleString('en')}`,
    };
    findings.phases.push(phase);
    log.info(phase, 'end to end');
    return { phase, rate, p99Ms, backlogMax, backlogLast };
  } finally {
    await roles?.stop();
    await stopChild(api);
  }
}
