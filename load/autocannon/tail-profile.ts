/**
 * Where the accept path's open-loop tail comes from (the openLoopTail
 * target). Each case runs the bench's phases 2 and 2b in miniature on a fresh
 * api: the accept path closed loop for DURATION_S (as phase 2, which leaves
 * Redis's append-only file grown), then the same path paced at half that
 * rate (RATE to set it), and reads what happened during the paced run:
 *
 *   - the api's garbage collections (its /metrics: count, time, and those
 *     of 10 ms or more) and its event loop's longest delay;
 *   - Redis: AOF rewrites finished or running, the last fork's time, and
 *     its latency monitor's worst events (threshold 2 ms);
 *   - this process's own event-loop delay (the generator);
 *   - the slow answers (over SLOW_MS, default 5) grouped into stalls: runs
 *     of slow answers whose due times lie within 50 ms of each other.
 *
 * Cases (CASES, comma-separated, each of one or more changes joined by
 * '+', e.g. semi8+hz100; by default: asBench,semi64,quietAof+semi64,noAof+semi64,semi8):
 *   asBench    as the bench runs 2b
 *   quietAof   the AOF rewritten before the paced run (none falls inside it)
 *   noAof      appendonly off for the paced run
 *   semiN      the api with N MB semi-spaces (it runs with 16, src/platform/node-flags.ts)
 *   singleGc   the api with --single-threaded-gc (no helper threads for the
 *              scavenger, which compete for the same two cores)
 *   hzN        Redis's hz at N for the paced run (10 by default: its expiry
 *              cycle runs 10 times a second, each for up to 25 ms)
 *
 * Run after `npm run bench` (it reuses its buyers), holding the bench lock:
 *   node dist/load/autocannon/tail-profile.js
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startApi, stopChild } from './processes.js';
import { acceptSales, benchBuyerTokens, profileRun } from './profile-kit.js';
import { aofRewrites, quietRedis } from './redis-info.js';
import { runClosedLoop } from './closed-loop.js';
import { runPaced } from './paced.js';
import { rawPurchase } from './phases/api-phases.js';

const API_PORT = 8094;
const SLOW_MS = Number(process.env.SLOW_MS ?? 5);
const CASES = (process.env.CASES ?? 'asBench,semi64,quietAof+semi64,noAof+semi64,semi8').split(',');
const { seconds: SECONDS, connections: CONNECTIONS, env, cfg, pool, redis } = await profileRun(API_PORT);
const buyerTokens = await benchBuyerTokens(pool, cfg.STAMPEDE_JWT_SECRET, Number(process.env.BUYERS ?? 100_000));

interface GcTotals { count: number; seconds: number; over10ms: number }

/** The api's collections so far, from prom-client's nodejs_gc_duration_seconds histogram (every kind summed). */
async function gcTotals(): Promise<GcTotals & { loopMaxMs: number }> {
  const text = await (await fetch(`http://127.0.0.1:${API_PORT}/metrics`)).text();
  const sum = (re: RegExp) => text.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  const count = sum(/^nodejs_gc_duration_seconds_count/);
  const under10ms = sum(/^nodejs_gc_duration_seconds_bucket\{.*le="0\.01"/);
  return {
    count, seconds: sum(/^nodejs_gc_duration_seconds_sum/), over10ms: count - under10ms,
    loopMaxMs: sum(/^nodejs_eventloop_lag_max_seconds/) * 1000,
  };
}

const persistence = async (): Promise<Record<string, string>> =>
  Object.fromEntries(((await redis.info('persistence')) ?? '').split('\r\n').filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]));

/** Slow answers grouped into stalls. */
function stalls(samples: [number, number][]): { atMs: number; spanMs: number; slow: number; worstMs: number }[] {
  const out: { atMs: number; spanMs: number; slow: number; worstMs: number }[] = [];
  for (const [due, latency] of samples.filter(([, l]) => l > SLOW_MS).sort((a, b) => a[0] - b[0])) {
    const last = out.at(-1);
    if (last && due - (last.atMs + last.spanMs) <= 50) {
      last.spanMs = due - last.atMs;
      last.slow += 1;
      last.worstMs = Math.max(last.worstMs, latency);
    } else out.push({ atMs: due, spanMs: 0, slow: 1, worstMs: latency });
  }
  return out;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

for (const name of CASES) {
  const changes = name.split('+');
  const semi = changes.find((c) => /^semi\d+$/.test(c));
  const hz = changes.find((c) => /^hz\d+$/.test(c));
  const saleIds = await acceptSales(pool, redis, `tail profile ${name}`, 400_000, buyerTokens.length);
  const purchase = (i: number) => ({ path: `/v1/sales/${saleIds[Math.floor(i / buyerTokens.length) % saleIds.length]}/purchases`, token: buyerTokens[i % buyerTokens.length]! });
  await quietRedis(redis);
  const api = await startApi(env, API_PORT, [
    ...(semi ? [`--max-semi-space-size=${semi.slice(4)}`] : []), ...(changes.includes('singleGc') ? ['--single-threaded-gc'] : []),
  ]);
  try {
    const accept = await runClosedLoop('accept', `http://127.0.0.1:${API_PORT}`, { connections: CONNECTIONS, durationS: SECONDS, pick: purchase });
    const rate = Number(process.env.RATE ?? Math.round(accept.rps / 2));
    if (changes.includes('quietAof')) await quietRedis(redis);
    if (changes.includes('noAof')) await redis.config('SET', 'appendonly', 'no');
    const [, hzBefore] = (await redis.config('GET', 'hz')) as [string, string];
    if (hz) await redis.config('SET', 'hz', hz.slice(2));
    await redis.config('SET', 'latency-monitor-threshold', '2');
    await redis.latency('RESET');
    const rewrites0 = await aofRewrites(redis);
    const gc0 = await gcTotals();
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const samples: [number, number][] = [];
    const offset = accept.requests + CONNECTIONS;
    const paced = await runPaced({
      host: '127.0.0.1', port: API_PORT, connections: CONNECTIONS, rate, durationS: SECONDS,
      request: (i) => { const p = purchase(i + offset); return rawPurchase(p.path, p.token); },
      onLatency: (due, latency) => samples.push([due, latency]),
    });
    loop.disable();
    const gc1 = await gcTotals();
    const p = await persistence();
    const latest = (await redis.latency('LATEST')) as [string, number, number, number][];
    if (changes.includes('noAof')) await redis.config('SET', 'appendonly', 'yes');
    await redis.config('SET', 'hz', hzBefore);
    const found = stalls(samples);
    console.log(`${name}: accept ${accept.rps} req/s; paced at ${rate}/s: p50 ${paced.p50} ms, p99 ${paced.p99} ms, max ${paced.max} ms, ${JSON.stringify(paced.statuses)}`);
    console.log(`  api GC during the paced run: ${gc1.count - gc0.count} collections, ${round1((gc1.seconds - gc0.seconds) * 1000)} ms in all, ${gc1.over10ms - gc0.over10ms} of 10 ms or more; api event loop max delay ${round1(gc1.loopMaxMs)} ms (prom-client's last sample)`);
    console.log(`  generator event loop: p99 ${round1(loop.percentile(99) / 1e6)} ms, max ${round1(loop.max / 1e6)} ms`);
    console.log(`  Redis: AOF rewrites finished during the run ${(await aofRewrites(redis)) - rewrites0}, in progress at its end ${p.aof_rewrite_in_progress}; last fork ${Math.round(Number(p.latest_fork_usec ?? 0) / 1000)} ms; latency monitor: ${latest.map(([event, , last, max]) => `${event} max ${max} ms (last ${last})`).join(', ') || 'nothing over 2 ms'}`);
    const slowShare = samples.filter(([, l]) => l > SLOW_MS).length / Math.max(samples.length, 1);
    console.log(`  ${(slowShare * 100).toFixed(2)} % of answers over ${SLOW_MS} ms, in ${found.length} stalls; the worst: ${found.sort((a, b) => b.slow - a.slow).slice(0, 6).map((s) => `at ${(s.atMs / 1000).toFixed(2)} s ${Math.round(s.spanMs)} ms long, ${s.slow} slow, worst ${round1(s.worstMs)} ms`).join('; ')}`);
  } finally {
    await stopChild(api);
  }
}
await redis.config('SET', 'latency-monitor-threshold', '0');
await pool.end();
redis.disconnect();
