/**
 * The accept path on its own, in turns with the hello-world baseline, so a
 * change to the purchase path can be measured in minutes and by CPU, not
 * only by req/s. Run after `npm run bench` (it reuses its buyers):
 *
 *   node dist/load/autocannon/accept-profile.js      # ROUNDS=2 DURATION_S=8
 *
 * Each round buys, as distinct buyers, from a fresh sale that never sells
 * out (the bench's accept path), and prints the baseline's req/s, the
 * accept path's req/s and ratio, the CPU each process spent per purchase,
 * and Redis's costliest commands per purchase (`fcall` is the
 * reservePurchases function, its inner commands counted inside it and again
 * on their own lines), with the purchases per call.
 */
import { startApi, stopChild } from './processes.js';
import { acceptSales, baselineRound, benchBuyerTokens, profileRun } from './profile-kit.js';
import { aofRewrites, commandCosts } from './redis-info.js';
import { runClosedLoop } from './closed-loop.js';
import { cpuCostByProcess, cpuPerRequest, cpuSnapshot } from './cpu.js';

const API_PORT = 8092;
const HELLO_PORT = 8093;
const { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, env, cfg, pool, redis, redisPid } = await profileRun(API_PORT);
const buyerTokens = await benchBuyerTokens(pool, cfg.STAMPEDE_JWT_SECRET, Number(process.env.BUYERS ?? 100_000));

for (let round = 1; round <= ROUNDS; round++) {
  const { rps: baseRps, cpuUs: baseCpuUs } = await baselineRound(env, redis, { port: HELLO_PORT, connections: CONNECTIONS, seconds: SECONDS, body: '{"quantity":1}' });

  // Buyer i mod n on sale floor(i / n), as the bench's accept path: every purchase is a buyer's first on its sale.
  // Enough sales for 300,000 purchases (about 20 s at the accept path's rate).
  const saleIds = await acceptSales(pool, redis, `accept profile ${round}`, 300_000, buyerTokens.length);
  const api = await startApi(env, API_PORT);
  const names = new Map([[api.pid!, 'api'], [process.pid, 'autocannon']]);
  await redis.config('RESETSTAT');
  const cpu0 = cpuSnapshot(names);
  const aof0 = await aofRewrites(redis);
  const accept = await runClosedLoop('accept', `http://127.0.0.1:${API_PORT}`, {
    connections: CONNECTIONS, durationS: SECONDS,
    pick: (i) => ({ path: `/v1/sales/${saleIds[Math.floor(i / buyerTokens.length) % saleIds.length]}/purchases`, token: buyerTokens[i % buyerTokens.length]! }),
  });
  const purchases = accept.statuses['202'] ?? 0;
  const acceptCpuUs = cpuPerRequest(cpu0, cpuSnapshot(), [api.pid!, process.pid, redisPid], accept.requests);
  const cpu = cpuCostByProcess(cpu0, cpuSnapshot(names), accept.requests).map((p) => `${p.name} ${p.usPerUnit}`).join(', ');
  const costs = await commandCosts(redis, Math.max(purchases, 1), 8);
  const cmds = costs.map((c) => `${c.command} ${c.usPerUnit.toFixed(1)} (${c.calls})`).join(', ');
  const fcalls = costs.find((c) => c.command === 'fcall')?.calls ?? 0;
  const rewrites = (await aofRewrites(redis)) - aof0;
  await stopChild(api);
  console.log(`round ${round}: baseline ${Math.round(baseRps)} req/s; accept path ${accept.rps} req/s = ${(accept.rps / baseRps).toFixed(2)}x, p99 ${accept.p99} ms, ${JSON.stringify(accept.statuses)}`);
  console.log(`  CPU µs/request: ${cpu}; baseline ${baseCpuUs} (server + autocannon), purchase ${acceptCpuUs} (api + Redis + autocannon) = ${(baseCpuUs / acceptCpuUs).toFixed(2)}x by CPU`);
  console.log(`  Redis µs/purchase: ${cmds}; ${fcalls ? (purchases / fcalls).toFixed(1) : '—'} purchases per FCALL${rewrites > 0 ? `; AOF rewritten ${rewrites}x` : ''}`);
}
await pool.end();
await redis.quit();
