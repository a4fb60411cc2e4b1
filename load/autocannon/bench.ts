/**
 * `npm run bench`: boots Stampede (api, then relay + worker, as separate
 * processes), seeds buyers and sales, and measures in one run:
 *   1. baseline     a bare uWS hello-world answering 202 (the machine's ceiling)
 *   2. accept path  distinct buyers against sales that never sell out (2b: the same, paced; 2c: the same with
 *                   Redis in the durable mode, appendfsync always, for the cost of closing the everysec window)
 *   3. flash sale   a few items, every seeded buyer once; time to sell out
 *   4. sold-out     every request against the sold-out sale
 *   5. drain        orders/s from the last 202 until every accepted purchase is in Postgres, the worker role
 *                   telling each buyer their result meanwhile (inbox rows counted, and how long after the last order)
 *   6. bid war      every bidder on one hot auction (api restarted alone); the leader must be the highest bid;
 *                   bracketed by baselines of its own (6a, 6b)
 *   7. fan-out      one auction.created to a million followers, api + relay + worker running; seconds to the last inbox row
 *   8. live push    one announcement to 10,000 connected buyers (WebSocket and SSE): 202 -> last client
 *   8a/b webhooks   deliveries to 98 healthy endpoints alone, then beside a dead and a slow one
 *   9. end to end   every role running, purchases paced at half the accept max: 202 -> confirmed, the backlog sampled
 *  11. cluster      three hot sales on one Redis node (11a), then on the 3-master Redis Cluster, one sale per
 *                   master (11b): req/s, CPU per request of the api and of each redis-server, the projection to
 *                   a machine per master; the cluster's masters flushed before and after (runs before 10)
 *  10. a million    the accept path with 1,000,000 distinct buyers on one api, per 10 s window (last: its
 *      buyers      purchases stay unsettled)
 * 2b′ paces the bare uWS as 2b paced the api (the openLoopTail target's reference).
 * The targets (targets.ts) are computed from the phases that ran and printed last.
 * STAMPEDE_BENCH_PHASES selects phases by name (comma-separated: baseline, api, drain, bidwar, fanout, livepush, webhooks,
 * endtoend, cluster, millionbuyers;
 * api needs baseline, drain needs api); all when unset. `STAMPEDE_BENCH_PHASES=fanout npm run bench` measures the fan-out alone
 * (a partial run's results go to load/results/<phases>/, so latest.json stays the last whole run).
 * After each it checks the invariants (the live ones in Redis after 2-4, Redis
 * against Postgres after 5), logs a broken one at once, and exits 1 at the end.
 * Results go to load/results/ as JSON and markdown, and are printed.
 *
 * The relay and worker are stopped during 1-4, so the api, Redis and the
 * load generator have the two cores; settlement is measured on its own in 5.
 * Each phase lives in phases/; this file is the order they run in.
 */
import { settings, type Findings } from './phases/context.js';
import { setUp, tearDown } from './phases/setup.js';
import { measureBaseline } from './phases/baseline.js';
import { runApiPhases } from './phases/api-phases.js';
import { drainSettlement } from './phases/drain.js';
import { auditSettledSales } from './phases/invariants.js';
import { runBidWarPhase } from './phases/bid-war-phase.js';
import { runFanOutPhase } from './phases/fan-out.js';
import { runLivePushPhase } from './phases/live-push-phase.js';
import { runWebhooksPhase } from './phases/webhooks.js';
import { runEndToEndPhase } from './phases/end-to-end.js';
import { runMillionBuyersPhase } from './phases/million-buyers.js';
import { clusterExtra, runClusterPhase } from './phases/cluster.js';
import { thisMachine, writeReport } from './report.js';
import { resultsDir, selectedPhases } from './phase-selection.js';
import { computeTargets, type BenchFigures } from './targets.js';

const selected = selectedPhases();

async function main(): Promise<void> {
  const machine = thisMachine();
  const bench = await setUp();
  const findings: Findings = { phases: [], violations: [] };

  const extra: Record<string, unknown> = { 'buyers seeded': settings.buyers, 'seed time (s)': bench.seedSeconds };
  const figures: BenchFigures = {};
  let acceptRps: number | undefined;
  if (selected.has('baseline')) {
    const baseline = await measureBaseline('1. baseline: bare uWS 202');
    findings.phases.push(baseline);
    if (selected.has('api')) {
      const { accept, paced, durable, flash, storm, pacedBare } = await runApiPhases(bench, findings, baseline);
      acceptRps = accept.rps;
      Object.assign(figures, {
        acceptRatio: accept.ratioToBaseline, flashSaleRatio: flash.ratioToBaseline, stormRatio: storm.ratioToBaseline,
        openLoop: { acceptP99: paced.p99, bareP99: pacedBare.p99, rate: pacedBare.rps },
      });
      const counted202 = [accept, paced, durable, flash, storm].reduce((n, p) => n + (p.statuses['202'] ?? 0), 0);
      extra['202 answers counted by autocannon'] = counted202;
      if (selected.has('drain')) {
        const drain = await drainSettlement(bench, findings);
        figures.settleOrdersPerSecond = drain.steadyOrdersPerSecond;
        // 2, 2b, 2c and 4 run for a time, not a count of requests: each may end with up to one
        // request per connection in flight (2b waits for its answers, so for it the bound is loose).
        const durationBoundPhases = [accept, paced, durable, storm].length;
        const confirmedOrders = await auditSettledSales(bench, findings, counted202, durationBoundPhases);
        Object.assign(extra, {
          'orders in Postgres (= sold in Redis, per sale)': confirmedOrders,
          'accepted while autocannon stopped (in flight at cut-off)': confirmedOrders - counted202,
          'settlement (orders/s, incl. process start)': drain.phase.rps,
          'settlement (orders/s, from the first order)': drain.steadyOrdersPerSecond,
          'buyers told (purchase results in inboxes)': drain.toldRows,
          'last buyer told (s after the last order)': drain.toldAfterDrainS,
        });
      }
    }
  }
  if (selected.has('bidwar')) figures.bidWarRatio = (await runBidWarPhase(bench, findings)).ratioToBaseline;
  if (selected.has('fanout')) {
    const fanOut = await runFanOutPhase(bench, findings);
    figures.fanOutS = fanOut.durationS;
    extra['fan-out (s, create to last inbox row)'] = fanOut.durationS;
    extra['fan-out (inbox rows/s)'] = fanOut.rps;
  }
  if (selected.has('livepush')) figures.livePushMs = (await runLivePushPhase(bench, findings)).max;
  if (selected.has('webhooks')) {
    const webhooks = await runWebhooksPhase(bench, findings);
    figures.webhooksPerSecond = webhooks.phase.rps;
    extra['webhooks (deliveries/s)'] = webhooks.phase.rps;
    extra['webhooks (p99 ms, acceptance to delivery)'] = webhooks.phase.p99;
    extra['webhooks (healthy p99 ms: alone -> beside a dead and a slow endpoint)'] = `${webhooks.controlP99} -> ${webhooks.withFaultyP99}`;
  }
  if (selected.has('endtoend')) {
    const e2e = await runEndToEndPhase(bench, findings, acceptRps);
    figures.endToEnd = { p99Ms: e2e.p99Ms, rate: e2e.rate, backlogMax: e2e.backlogMax, backlogLast: e2e.backlogLast };
    extra['end to end (p99 ms, 202 -> confirmed)'] = e2e.p99Ms;
    extra['end to end backlog (accepted, not settled: max, last)'] = `${e2e.backlogMax}, ${e2e.backlogLast}`;
  }
  if (selected.has('cluster')) Object.assign(extra, clusterExtra(await runClusterPhase(bench, findings)));
  // Last: its purchases are never settled (see million-buyers.ts).
  if (selected.has('millionbuyers')) {
    const { windows } = await runMillionBuyersPhase(bench, findings);
    const first = windows[0];
    const last = windows.at(-1);
    if (first && last && windows.length >= 2) figures.millionBuyers = { firstRps: first.rps, lastRps: last.rps, firstCpuUs: first.cpuUs, lastCpuUs: last.cpuUs };
    else findings.violations.push('million buyers: fewer than two 10 s windows measured (BENCH_MILLION_SECONDS too short)');
  }

  const { violations } = findings;
  const at = new Date().toISOString();
  // A run of some phases has its own folder, so latest.json stays the last whole run.
  writeReport(resultsDir(selected), {
    at, machine, node: process.version, connections: settings.connections, phases: findings.phases, targets: computeTargets(figures),
    extra: { ...extra, 'invariant violations': violations.length === 0 ? 0 : violations.join('; ') },
    violations,
  });
  await tearDown(bench);
  if (violations.length > 0) {
    process.stderr.write(`\nINVARIANT VIOLATIONS:\n- ${violations.join('\n- ')}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
