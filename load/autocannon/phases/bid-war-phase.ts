/**
 * 6. The bid war: every bidder on one hot auction (bid-war.ts), against an
 * api started again on its own. It runs after the drain so its events do not
 * load the settlement measurement (the relay is stopped; they stay in the
 * outbox). The war is minutes after the api phases, past the drain and a
 * vacuum: it is bracketed by baselines of its own (6a, 6b), and its ratio
 * uses the higher of the two (the rule the api phases follow), not baselines
 * taken before the host's load changed.
 */
import { Auctions } from '../../../src/auctions/auctions.js';
import { auditBidWar, runBidWar } from '../bid-war.js';
import { cpuPerRequest, cpuShares, cpuSnapshot, formatShares } from '../cpu.js';
import { startApi, stopChild } from '../processes.js';
import { aofRewrites, redisServerPid } from '../redis-info.js';
import { scenarios } from '../scenarios.js';
import type { Phase } from '../results.js';
import { measureBaseline } from './baseline.js';
import { env, log, scaled, settings, type Bench, type Findings } from './context.js';
import { letTheHostSettle } from './setup.js';

/** The war's row, its ratio against the higher of its own baselines (the bidWar target). */
export async function runBidWarPhase(bench: Bench, findings: Findings): Promise<Phase> {
  const auction = await new Auctions(bench.pool, bench.redis).create({
    title: 'bench: hot lot', currency: 'EUR', startPrice: scenarios.bidWar.startPrice, startsAt: new Date(Date.now() - 1000).toISOString(),
    endsAt: new Date(Date.now() + 3600_000).toISOString(), softCloseSeconds: 0, increment: { type: 'absolute', amount: scenarios.bidWar.increment },
  }, { role: 'operator', userId: null });
  // The drain's inserts wake autovacuum, which would take a core from the war.
  await letTheHostSettle(bench);

  const baselineBefore = await measureBaseline('6a. baseline before the bid war');
  findings.phases.push(baselineBefore);
  const { war, cpu, aofBefore } = await bidWar(bench, auction.id);
  const baselineAfter = await measureBaseline('6b. baseline after the bid war');
  findings.phases.push(baselineAfter);

  const baselineRps = Math.max(baselineBefore.rps, baselineAfter.rps);
  // By CPU too, which the host's neighbours disturb far less than req/s: the cheaper baseline, so noise never flatters it.
  const helloCpu = Math.min(baselineBefore.cpuUsPerRequest!, baselineAfter.cpuUsPerRequest!);
  const aofRewritesInWar = (await aofRewrites(bench.redis)) - aofBefore;
  const audit = await auditBidWar(bench.redis, auction.id, war.statuses, settings.connections);
  const warPhase: Phase = {
    ...war, ratioToBaseline: war.rps / baselineRps,
    note: `${audit.acceptedBids.toLocaleString('en')} bids accepted (each one increment above the last sent; overtaken ones get BID_TOO_LOW); leader = highest bid: ${audit.violations.length === 0 ? 'yes' : 'NO'}; CPU (share of one core): ${formatShares(cpu)}; CPU per bid (api + Redis + autocannon) ${war.cpuUsPerRequest} µs against the baseline's ${helloCpu} µs per request: ${(helloCpu / war.cpuUsPerRequest!).toFixed(2)}× by CPU${aofRewritesInWar > 0 ? `; Redis rewrote its AOF ${aofRewritesInWar}× during the war (a forked child on a core)` : ''}`,
  };
  findings.phases.push(warPhase);
  findings.violations.push(...audit.violations);
  log.info(warPhase, 'bid war');
  return warPhase;
}

/** The war itself, with the CPU the api, Redis and autocannon spent on it, and Redis's AOF rewrites before it began. */
async function bidWar(bench: Bench, auctionId: string): Promise<{ war: Phase; cpu: [string, number][]; aofBefore: number }> {
  const api = await startApi(env, settings.apiPort, settings.apiNodeFlags);
  try {
    const names = new Map([[api.pid!, 'api'], [process.pid, 'bench (autocannon)']]);
    const redisPid = await redisServerPid(bench.redis);
    const cpuBefore = cpuSnapshot(names);
    const aofBefore = await aofRewrites(bench.redis);
    const cpuFrom = Date.now();
    const war: Phase = {
      name: '6. bid war (one hot auction)',
      ...(await runBidWar(bench.redis, {
        url: `http://127.0.0.1:${settings.apiPort}`, auctionId, tokens: bench.buyerTokens, connections: settings.connections,
        durationS: scaled(scenarios.bidWar.durationSeconds), startPrice: scenarios.bidWar.startPrice, increment: scenarios.bidWar.increment,
      })),
    };
    const cpuAfter = cpuSnapshot(names);
    const cpu = cpuShares(cpuBefore, cpuAfter, (Date.now() - cpuFrom) / 1000);
    war.cpuUsPerRequest = cpuPerRequest(cpuBefore, cpuAfter, [api.pid!, process.pid, redisPid], war.requests);
    return { war, cpu, aofBefore };
  } finally {
    await stopChild(api);
  }
}
