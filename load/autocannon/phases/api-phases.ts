/**
 * The api phases, 2 to 4, against one api process while the relay and worker
 * are stopped (the api, Redis and the load generator have the cores), then
 * the baseline again (1b). After each, the live invariants (invariants.ts).
 * 2c is the accept path again with Redis in the durable mode (appendfsync
 * always), so the report shows what closing the everysec window costs.
 */
import { runClosedLoop } from '../closed-loop.js';
import { runPaced } from '../paced.js';
import { startApi, startHelloServer, stopChild } from '../processes.js';
import { scenarios } from '../scenarios.js';
import type { Phase } from '../results.js';
import { measureBaseline } from './baseline.js';
import { env, log, scaled, settings, type Bench, type Findings } from './context.js';
import { LiveSaleChecks } from './invariants.js';

/** The phases whose purchases the drain settles. */
export interface PurchasePhases {
  accept: Phase;
  paced: Phase;
  durable: Phase;
  flash: Phase;
  storm: Phase;
  /** 2b′: the bare uWS paced as 2b was (not a purchase phase: its ratio to 2b is the openLoopTail target). */
  pacedBare: Phase;
}

export async function runApiPhases(bench: Bench, findings: Findings, baselineBefore: Phase): Promise<PurchasePhases> {
  const api = await startApi(env, settings.apiPort, settings.apiNodeFlags);
  try {
    const checks = new LiveSaleChecks(bench, findings);
    const record = async (phase: Phase, label: string, unitsAtMost?: number) => {
      findings.phases.push(phase);
      log.info(phase, label);
      await checks.after(phase, 1, unitsAtMost);
    };
    const accept = await acceptPath(bench);
    await record(accept, 'accept path');
    const paced = await pacedAcceptPath(bench, accept);
    await record(paced, 'accept path paced');
    const pacedBare = await pacedBareServer(bench, pacedRateOf(accept));
    findings.phases.push(pacedBare);
    log.info(pacedBare, 'bare uWS paced');
    const durable = await durableAcceptPath(bench, accept, accept.requests + paced.requests + 2 * settings.connections);
    await record(durable, 'accept path, appendfsync always');
    const flash = await flashSale(bench);
    await record(flash, 'flash sale', scenarios.flashSale.stock);
    const storm = await soldOutStorm(bench);
    await record(storm, 'sold-out storm', 0);

    const baselineAfter = await measureBaseline('1b. baseline again, after the api phases');
    findings.phases.push(baselineAfter);
    // Ratios use the higher of the two baselines, so noise never flatters them.
    const baseline = baselineAfter.rps > baselineBefore.rps ? baselineAfter : baselineBefore;
    for (const p of [accept, flash, storm]) p.ratioToBaseline = p.rps / baseline.rps;
    const flash202 = flash.statuses['202'] ?? 0;
    if (flash202 !== scenarios.flashSale.stock) findings.violations.push(`flash sale: ${flash202} accepted for ${scenarios.flashSale.stock} units`);
    if ((storm.statuses['202'] ?? 0) !== 0) findings.violations.push('sold-out storm accepted a purchase');
    for (const p of findings.phases) if (Object.keys(p.statuses).some((k) => /^5/.test(k))) findings.violations.push(`${p.name}: 5xx answers`);
    return { accept, paced, durable, flash, storm, pacedBare };
  } finally {
    await stopChild(api);
  }
}

/**
 * Request i of the accept path: buyer i mod n on sale floor(i / n), so every
 * purchase is a buyer's first on its sale until buyers x sales run out.
 */
function acceptPurchase(bench: Bench, i: number): { path: string; token: string } {
  const n = bench.buyerTokens.length;
  return { path: `/v1/sales/${bench.acceptSaleIds[Math.floor(i / n) % bench.acceptSaleIds.length]}/purchases`, token: bench.buyerTokens[i % n]! };
}

/** 2. Distinct buyers against sales that never sell out: the full purchase path, as fast as the api answers. */
async function acceptPath(bench: Bench): Promise<Phase> {
  const accept = await runClosedLoop('2. accept path', apiUrl(), {
    connections: settings.connections, durationS: scaled(scenarios.acceptPath.durationSeconds),
    pick: (i) => acceptPurchase(bench, i),
  });
  if (accept.requests >= bench.buyerTokens.length * bench.acceptSaleIds.length) accept.note = 'WARNING: buyers x sales exhausted; raise BENCH_BUYERS';
  return accept;
}

/**
 * 2c. The accept path with Redis fsyncing its AOF before it answers
 * (`CONFIG SET appendfsync always`, what STAMPEDE_REDIS_APPENDFSYNC=always
 * starts it with), then back to what it was. Starts past every buyer-sale
 * pair 2 and 2b used (`offset`).
 */
async function durableAcceptPath(bench: Bench, accept: Phase, offset: number): Promise<Phase> {
  const [, before] = (await bench.redis.config('GET', 'appendfsync')) as [string, string];
  await bench.redis.config('SET', 'appendfsync', 'always');
  try {
    const durable = await runClosedLoop('2c. accept path, appendfsync always', apiUrl(), {
      connections: settings.connections, durationS: scaled(scenarios.acceptPath.durationSeconds),
      pick: (i) => acceptPurchase(bench, i + offset),
    });
    durable.note = `${(durable.rps / accept.rps).toFixed(2)}× the accept path's ${accept.rps.toLocaleString('en')} req/s with appendfsync ${before}`;
    if (offset + durable.requests >= bench.buyerTokens.length * bench.acceptSaleIds.length) durable.note += '; WARNING: buyers x sales exhausted; raise BENCH_BUYERS';
    return durable;
  } finally {
    await bench.redis.config('SET', 'appendfsync', before);
  }
}

/**
 * 2b. The same path paced below the ceiling, open loop (see paced.ts):
 * latency when the machine is not saturated. A closed loop of many
 * connections at saturation cannot show it: its mean latency is
 * connections / throughput. BENCH_PACED_RATE sets the pace; half the accept
 * path's rate by default.
 */
async function pacedAcceptPath(bench: Bench, accept: Phase): Promise<Phase> {
  const pacedRate = pacedRateOf(accept);
  // Past every buyer-sale pair the accept path sent, the requests in flight at its cut-off included.
  const offset = accept.requests + settings.connections;
  const pacedRun = await runPaced({
    host: '127.0.0.1', port: settings.apiPort, connections: settings.connections, rate: pacedRate, durationS: scaled(scenarios.acceptPath.durationSeconds),
    request: (i) => {
      const p = acceptPurchase(bench, i + offset);
      return rawPurchase(p.path, p.token);
    },
  });
  return {
    name: `2b. accept path paced at ${pacedRate.toLocaleString('en')} req/s (open loop)`,
    ...pacedRun, rps: Math.round(pacedRun.requests / pacedRun.durationS),
  };
}

/** 2b's rate: BENCH_PACED_RATE, or half the accept path's. */
const pacedRateOf = (accept: Phase): number => Number(process.env.BENCH_PACED_RATE ?? Math.round(accept.rps / 2));

/** A purchase as paced.ts sends it (raw HTTP/1.1, keep-alive). */
export const rawPurchase = (path: string, token: string): string =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
  `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"quantity":1}`;

/**
 * 2b′. The bare uWS hello-world paced at 2b's rate by the same generator,
 * connections and duration, with the very requests 2b sent (the same
 * purchases, paths and tokens): the open-loop tail this host and
 * generator give any uWS server, which the openLoopTail target compares
 * 2b's p99 with. The api is idle meanwhile.
 */
async function pacedBareServer(bench: Bench, rate: number): Promise<Phase> {
  const hello = await startHelloServer(env, settings.helloPort);
  try {
    const run = await runPaced({
      host: '127.0.0.1', port: settings.helloPort, connections: settings.connections, rate, durationS: scaled(scenarios.acceptPath.durationSeconds),
      request: (i) => {
        const p = acceptPurchase(bench, i);
        return rawPurchase(p.path, p.token);
      },
    });
    return { name: `2b′. bare uWS paced at ${rate.toLocaleString('en')} req/s (open loop, as 2b)`, ...run, rps: Math.round(run.requests / run.durationS) };
  } finally {
    await stopChild(hello);
  }
}

/** 3. Every buyer once against the flash sale's few items; the note says how soon they sold out. */
async function flashSale(bench: Bench): Promise<Phase> {
  const n = bench.buyerTokens.length;
  let accepted = 0;
  let soldOutAt = 0;
  const flashStart = Date.now();
  const flash = await runClosedLoop('3. flash sale (100 items)', apiUrl(), {
    connections: settings.connections, amount: n,
    pick: (i) => ({ path: `/v1/sales/${bench.flashSaleId}/purchases`, token: bench.buyerTokens[i % n]! }),
    onStatus: (s) => {
      if (s === 202 && ++accepted === scenarios.flashSale.stock) soldOutAt = Date.now();
    },
  });
  flash.note = `${n.toLocaleString('en')} distinct buyers; sold out after ${soldOutAt ? soldOutAt - flashStart : '—'} ms`;
  return flash;
}

/** 4. Every request against the sold-out sale: how fast the api refuses. */
async function soldOutStorm(bench: Bench): Promise<Phase> {
  const n = bench.buyerTokens.length;
  return runClosedLoop('4. sold-out storm', apiUrl(), {
    connections: settings.connections, durationS: scaled(scenarios.soldOutStorm.durationSeconds),
    pick: (i) => ({ path: `/v1/sales/${bench.flashSaleId}/purchases`, token: bench.buyerTokens[i % n]! }),
  });
}

const apiUrl = () => `http://127.0.0.1:${settings.apiPort}`;
