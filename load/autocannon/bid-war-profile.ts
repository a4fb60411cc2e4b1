/**
 * The bid war on its own, in turns with the hello-world baseline, so a
 * change to the bid path can be measured in minutes instead of a whole
 * `npm run bench`. Run after `npm run bench` (it reuses its buyers):
 *
 *   node dist/load/autocannon/bid-war-profile.js      # ROUNDS=2 DURATION_S=8
 *
 * BIDDERS=n sets how many distinct bidders take turns (default 20,000).
 * PROF=1 writes a V8 CPU profile of each round's api to load/results/profiles/.
 *
 * Each round prints the baseline's req/s, the war's bids/s and ratio, the
 * CPU each process spent per bid request, and Redis's costliest commands
 * per bid request (placeBids is the FCALL, one per api turn's bids; the commands it runs are
 * counted inside it and again on their own lines).
 */
import { Auctions } from '../../src/auctions/auctions.js';
import { cpuProfileFlags, startApi, stopChild } from './processes.js';
import { baselineRound, benchBuyerTokens, profileRun } from './profile-kit.js';
import { aofRewrites, commandCosts } from './redis-info.js';
import { runBidWar } from './bid-war.js';
import { cpuCostByProcess, cpuPerRequest, cpuSnapshot } from './cpu.js';
import { scenarios } from './scenarios.js';

const API_PORT = 8090;
const HELLO_PORT = 8091;
const { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, env, cfg, pool, redis, redisPid } = await profileRun(API_PORT);
// BIDDERS: how many distinct bidders take turns (the bench's war uses every buyer it seeded).
const BIDDERS = Number(process.env.BIDDERS ?? 20_000);
const buyerTokens = await benchBuyerTokens(pool, cfg.STAMPEDE_JWT_SECRET, BIDDERS);

for (let round = 1; round <= ROUNDS; round++) {
  const { rps: baseRps, cpuUs: baseCpuUs } = await baselineRound(env, redis, { port: HELLO_PORT, connections: CONNECTIONS, seconds: SECONDS, body: '{"amount":1}' });

  const auction = await new Auctions(pool, redis).create({
    title: 'bid-war profile', currency: 'EUR', startPrice: scenarios.bidWar.startPrice, startsAt: new Date(Date.now() - 1000).toISOString(),
    endsAt: new Date(Date.now() + 3600_000).toISOString(), softCloseSeconds: 0, increment: { type: 'absolute', amount: scenarios.bidWar.increment },
  }, { role: 'operator', userId: null });
  const api = await startApi(env, API_PORT, cpuProfileFlags(Boolean(process.env.PROF)));
  const names = new Map([[api.pid!, 'api'], [process.pid, 'autocannon']]);
  await redis.config('RESETSTAT');
  const cpu0 = cpuSnapshot(names);
  const aof0 = await aofRewrites(redis);
  const war = await runBidWar(redis, {
    url: `http://127.0.0.1:${API_PORT}`, auctionId: auction.id, tokens: buyerTokens, connections: CONNECTIONS,
    durationS: SECONDS, startPrice: scenarios.bidWar.startPrice, increment: scenarios.bidWar.increment,
  });
  const warCpuUs = cpuPerRequest(cpu0, cpuSnapshot(), [api.pid!, process.pid, redisPid], war.requests);
  const cpu = cpuCostByProcess(cpu0, cpuSnapshot(names), war.requests).map((p) => `${p.name} ${p.usPerUnit}`).join(', ');
  const cmds = (await commandCosts(redis, war.requests, 8)).map((c) => `${c.command} ${c.usPerUnit.toFixed(1)} (${c.calls})`).join(', ');
  const rewrites = (await aofRewrites(redis)) - aof0;
  await stopChild(api);
  console.log(`round ${round}: baseline ${Math.round(baseRps)} req/s; bid war ${war.rps} bids/s = ${(war.rps / baseRps).toFixed(2)}x, p99 ${war.p99} ms, ${JSON.stringify(war.statuses)}`);
  console.log(`  CPU µs/request: ${cpu}; baseline ${baseCpuUs} (server + autocannon), bid ${warCpuUs} (api + Redis + autocannon) = ${(baseCpuUs / warCpuUs).toFixed(2)}x by CPU`);
  console.log(`  Redis µs/request: ${cmds}${rewrites > 0 ? `; AOF rewritten ${rewrites}x during the war` : ''}`);
}
await pool.end();
await redis.quit();
