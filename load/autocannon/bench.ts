/**
 * `npm run bench`: boots Stampede (api, then relay + worker, as separate
 * processes), seeds buyers and sales, and measures in one run:
 *   1. baseline     a bare uWS hello-world answering 202 (the machine's ceiling)
 *   2. accept path  distinct buyers against sales that never sell out (2b: the same, paced)
 *   3. flash sale   a few items, every seeded buyer once; time to sell out
 *   4. sold-out     every request against the sold-out sale
 *   5. drain        orders/s from the last 202 until every accepted purchase is in Postgres
 *   6. bid war      every bidder on one hot auction (api restarted alone); the leader must be the highest bid;
 *                   bracketed by baselines of its own (6a, 6b)
 *   7. live push    one announcement to 10,000 connected buyers (WebSocket and SSE): 202 -> last client
 * STAMPEDE_BENCH_PHASES (comma-separated: api = 1-5, bid-war, live-push) runs only those; such a run's
 * report goes to load/results/partial/, so it never replaces the full run's latest.
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
import { settings, type Bench, type Findings } from './phases/context.js';
import { setUp, tearDown } from './phases/setup.js';
import { measureBaseline } from './phases/baseline.js';
import { runApiPhases } from './phases/api-phases.js';
import { drainSettlement } from './phases/drain.js';
import { auditSettledSales } from './phases/invariants.js';
import { runBidWarPhase } from './phases/bid-war-phase.js';
import { runLivePushPhase } from './phases/live-push-phase.js';
import { thisMachine, writeReport } from './report.js';

const PHASE_GROUPS = ['api', 'bid-war', 'live-push'] as const;
const selected = process.env.STAMPEDE_BENCH_PHASES?.split(',').map((s) => s.trim());
if (selected?.some((s) => !(PHASE_GROUPS as readonly string[]).includes(s))) {
  process.stderr.write(`STAMPEDE_BENCH_PHASES: each of ${PHASE_GROUPS.join(', ')}\n`);
  process.exit(2);
}
const runs = (group: (typeof PHASE_GROUPS)[number]) => !selected || selected.includes(group);

async function main(): Promise<void> {
  const machine = thisMachine();
  const bench = await setUp();
  const findings: Findings = { phases: [], violations: [] };
  const extra: Record<string, unknown> = { 'buyers seeded': settings.buyers, 'seed time (s)': bench.seedSeconds };
  if (runs('api')) Object.assign(extra, await apiPhases(bench, findings));
  if (runs('bid-war')) await runBidWarPhase(bench, findings);
  if (runs('live-push')) await runLivePushPhase(bench, findings);

  const { violations } = findings;
  const at = new Date().toISOString();
  writeReport(join(projectRoot, 'load', 'results', ...(selected ? ['partial'] : [])), {
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

/** 1-5: the baseline, the api phases, the drain and the audit of what settled. */
async function apiPhases(bench: Bench, findings: Findings): Promise<Record<string, unknown>> {
  const baseline = await measureBaseline('1. baseline: bare uWS 202');
  findings.phases.push(baseline);
  const { accept, paced, flash, storm } = await runApiPhases(bench, findings, baseline);

  const drain = await drainSettlement(bench, findings);
  const counted202 = [accept, paced, flash, storm].reduce((n, p) => n + (p.statuses['202'] ?? 0), 0);
  // 2, 2b and 4 run for a time, not a count of requests: each may end with up to one
  // request per connection in flight (2b waits for its answers, so for it the bound is loose).
  const durationBoundPhases = [accept, paced, storm].length;
  const confirmedOrders = await auditSettledSales(bench, findings, counted202, durationBoundPhases);

  return {
    '202 answers counted by autocannon': counted202,
    'orders in Postgres (= sold in Redis, per sale)': confirmedOrders,
    'accepted while autocannon stopped (in flight at cut-off)': confirmedOrders - counted202,
    'settlement (orders/s, incl. process start)': drain.phase.rps,
    'settlement (orders/s, from the first order)': drain.steadyOrdersPerSecond,
  };
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
