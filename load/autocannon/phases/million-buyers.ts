/**
 * 10. A million buyers: the accept path on one api (relay and worker
 * stopped, as in 2) with BENCH_MILLION_BUYERS (1,000,000) distinct buyers,
 * every request a buyer the api has not seen yet, closed loop for
 * BENCH_MILLION_SECONDS (60): req/s and the api's CPU per request (from
 * /proc) per 10 s window. An api that slows down once it has seen more
 * buyers than its caches hold (issue 17: the token cache) shows it here.
 * Target: the last window's req/s ≥ 0.9× the first's, CPU per request flat.
 *
 * The buyers are users only (one INSERT … SELECT generate_series, no
 * wallets: nothing here is settled), inserted before the api starts so it
 * loads them as known buyers (STAMPEDE_KNOWN_BUYERS_MAX raised to hold them
 * and the seeded ones); their tokens are signed by this process meanwhile.
 * It runs last: its purchases stay unsettled in the outbox, which the next
 * run's fresh database and flushed Redis forget.
 */
import { createBuyerTokens } from '../../../src/platform/auth/tokens.js';
import { Sales } from '../../../src/sales/sales.js';
import { runClosedLoop } from '../closed-loop.js';
import { cpuPerRequest, cpuSnapshot, type CpuSnapshot } from '../cpu.js';
import { startApi, stopChild } from '../processes.js';
import type { Phase } from '../results.js';
import { cfg, env, log, settings, type Bench, type Findings } from './context.js';
import { letTheHostSettle } from './setup.js';

const BUYERS = Number(process.env.BENCH_MILLION_BUYERS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_MILLION_SECONDS ?? 60);
const WINDOW_S = 10;
const SIGN_CHUNK = 20_000;

export interface MillionBuyers {
  phase: Phase;
  windows: { rps: number; cpuUs: number }[];
}

/** Buyer k's id: `usr_m` and k in 11 digits (the id format's 12 characters). */
const idOf = (k: number) => `usr_m${String(k).padStart(11, '0')}`;

export async function runMillionBuyersPhase(bench: Bench, findings: Findings): Promise<MillionBuyers> {
  const seedStart = Date.now();
  const inserted = bench.pool.query(
    `INSERT INTO users (id, kind, name) SELECT 'usr_m' || lpad(g::text, 11, '0'), 'buyer', 'bench million ' || g FROM generate_series(0, $1 - 1) AS g`, [BUYERS]);
  const tokens = createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, 6 * 3600);
  const buyerTokens: string[] = new Array<string>(BUYERS);
  for (let k = 0; k < BUYERS; k += SIGN_CHUNK) {
    for (let j = k; j < Math.min(BUYERS, k + SIGN_CHUNK); j++) buyerTokens[j] = tokens.issue(idOf(j));
    await new Promise((r) => setImmediate(r));
  }
  await inserted;
  // Past the last buyer the requests go on to a second sale, so every purchase is still a buyer's first there.
  const sales = new Sales(bench.pool, bench.redis);
  const saleIds: string[] = [];
  for (let k = 0; k < 2; k++) {
    saleIds.push((await sales.create({
      name: `million buyers ${k}`, sku: 'BENCH-MILLION', unitPrice: 100, currency: 'EUR', stock: BUYERS, perBuyerLimit: 1,
      startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(),
    }, { role: 'operator', userId: null })).id);
  }
  const seedS = (Date.now() - seedStart) / 1000;
  log.info({ buyers: BUYERS, seedS }, 'million buyers: seeded');
  await letTheHostSettle(bench);

  const apiEnv = { ...env, STAMPEDE_KNOWN_BUYERS_MAX: String(BUYERS + bench.buyerTokens.length + 10_000) };
  const startedAt = Date.now();
  const api = await startApi(apiEnv, settings.apiPort, settings.apiNodeFlags);
  const apiStartS = (Date.now() - startedAt) / 1000;
  try {
    let answered = 0;
    const windows: { rps: number; cpuUs: number }[] = [];
    let last: { at: number; answered: number; cpu: CpuSnapshot } = { at: Date.now(), answered: 0, cpu: cpuSnapshot() };
    const sample = () => {
      const now = { at: Date.now(), answered, cpu: cpuSnapshot() };
      const requests = now.answered - last.answered;
      windows.push({ rps: Math.round(requests / ((now.at - last.at) / 1000)), cpuUs: cpuPerRequest(last.cpu, now.cpu, [api.pid!], requests) });
      last = now;
    };
    const sampler = setInterval(sample, WINDOW_S * 1000);
    let run: Phase;
    try {
      last = { at: Date.now(), answered: 0, cpu: cpuSnapshot() };
      run = await runClosedLoop(`10. accept path, ${BUYERS.toLocaleString('en')} distinct buyers`, `http://127.0.0.1:${settings.apiPort}`, {
        connections: settings.connections, durationS: SECONDS,
        pick: (i) => ({ path: `/v1/sales/${saleIds[Math.floor(i / BUYERS) % saleIds.length]}/purchases`, token: buyerTokens[i % BUYERS]! }),
        onStatus: () => void answered++,
      });
    } finally {
      clearInterval(sampler);
    }
    // A last window shorter than half a window is noise, not a figure.
    if (Date.now() - last.at >= (WINDOW_S * 1000) / 2) sample();
    const first = windows[0];
    const lastWindow = windows.at(-1);
    run.cpuUsPerRequest = lastWindow?.cpuUs;
    run.note = `${Math.min(run.requests, BUYERS).toLocaleString('en')} distinct buyers seen (${BUYERS.toLocaleString('en')} seeded in ${seedS.toFixed(1)} s, users and tokens; the api started in ${apiStartS.toFixed(1)} s); ` +
      `per ${WINDOW_S} s window, req/s (api CPU µs per request): ${windows.map((w) => `${w.rps.toLocaleString('en')} (${w.cpuUs})`).join(', ')}` +
      (first && lastWindow ? `; last/first ${(lastWindow.rps / Math.max(first.rps, 1)).toFixed(2)}× by req/s, ${(lastWindow.cpuUs / Math.max(first.cpuUs, 1)).toFixed(2)}× by CPU per request` : '');
    if (Object.keys(run.statuses).some((k) => /^5/.test(k))) findings.violations.push(`${run.name}: 5xx answers`);
    findings.phases.push(run);
    log.info(run, 'million buyers');
    return { phase: run, windows };
  } finally {
    await stopChild(api);
  }
}
