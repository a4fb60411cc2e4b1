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
 * STAMPEDE_BENCH_PHASES selects phases by name (comma-separated: baseline, api, drain, bidwar, fanout, livepush, webhooks;
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
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';
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
import { thisMachine, writeReport } from './report.js';

const PHASES = ['baseline', 'api', 'drain', 'bidwar', 'fanout', 'livepush', 'webhooks'] as const;
const selected = new Set((process.env.STAMPEDE_BENCH_PHASES ?? PHASES.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== ''));
for (const name of selected) if (!(PHASES as readonly string[]).includes(name)) throw new Error(`STAMPEDE_BENCH_PHASES: no phase ${name} (phases: ${PHASES.join(', ')})`);
if (selected.has('api') && !selected.has('baseline')) throw new Error('STAMPEDE_BENCH_PHASES: api needs baseline (its ratios)');
if (selected.has('drain') && !selected.has('api')) throw new Error('STAMPEDE_BENCH_PHASES: drain needs api (its backlog)');

async function main(): Promise<void> {
  const machine = thisMachine();
  const bench = await setUp();
  const findings: Findings = { phases: [], violations: [] };

  const extra: Record<string, unknown> = { 'buyers seeded': settings.buyers, 'seed time (s)': bench.seedSeconds };
  if (selected.has('baseline')) {
    const baseline = await measureBaseline('1. baseline: bare uWS 202');
    findings.phases.push(baseline);
    if (selected.has('api')) {
      const { accept, paced, durable, flash, storm } = await runApiPhases(bench, findings, baseline);
      const counted202 = [accept, paced, durable, flash, storm].reduce((n, p) => n + (p.statuses['202'] ?? 0), 0);
      extra['202 answers counted by autocannon'] = counted202;
      if (selected.has('drain')) {
        const drain = await drainSettlement(bench, findings);
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
  if (selected.has('bidwar')) await runBidWarPhase(bench, findings);
  if (selected.has('fanout')) {
    const fanOut = await runFanOutPhase(bench, findings);
    extra['fan-out (s, create to last inbox row)'] = fanOut.durationS;
    extra['fan-out (inbox rows/s)'] = fanOut.rps;
  }
  if (selected.has('livepush')) await runLivePushPhase(bench, findings);
  if (selected.has('webhooks')) {
    const webhooks = await runWebhooksPhase(bench, findings);
    extra['webhooks (deliveries/s)'] = webhooks.phase.rps;
    extra['webhooks (p99 ms, acceptance to delivery)'] = webhooks.phase.p99;
    extra['webhooks (healthy p99 ms: alone -> beside a dead and a slow endpoint)'] = `${webhooks.controlP99} -> ${webhooks.withFaultyP99}`;
  }

  const { violations } = findings;
  const at = new Date().toISOString();
  // A run of some phases has its own folder, so latest.json stays the last whole run.
  const partial = selected.size < PHASES.length ? [...selected].join('+') : '';
  writeReport(join(projectRoot, 'load', 'results', partial), {
    at, machine, node: process.version, connections: settings.connections, phases: findings.phases,
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
