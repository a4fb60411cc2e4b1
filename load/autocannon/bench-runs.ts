/**
 * `npm run bench:3`: the whole bench (or STAMPEDE_BENCH_PHASES' selection)
 * BENCH_RUNS times (3) back to back, each run a `npm run bench` of its own
 * (its own fresh database, its own latest.json and stamped copy), then each
 * target's min, median and max over the runs in latest-<runs>.json and
 * latest-<runs>.md beside them, met judged on the median run (targets.ts).
 * The bench's noise on this host, stated next to every figure. Exits 1 when
 * any run did (an invariant broken, a phase failed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';
import { resultsDir, selectedPhases } from './phase-selection.js';
import { renderTargetsOverRuns, type BenchReport } from './report.js';
import { targetsOverRuns } from './targets.js';

const runs = Number(process.env.BENCH_RUNS ?? 3);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`BENCH_RUNS: ${process.env.BENCH_RUNS} is not a count of runs`);
const dir = resultsDir(selectedPhases());

const reports: BenchReport[] = [];
const failed: string[] = [];
for (let k = 1; k <= runs; k++) {
  process.stdout.write(`\n=== bench run ${k} of ${runs} ===\n`);
  const startedAt = new Date().toISOString();
  const r = spawnSync(process.execPath, [join(projectRoot, 'dist', 'load', 'autocannon', 'bench.js')], { stdio: 'inherit', env: process.env });
  if (r.status !== 0) failed.push(`run ${k} exited with ${r.status ?? r.signal}`);
  const latest = join(dir, 'latest.json');
  const report: BenchReport | undefined = existsSync(latest) ? JSON.parse(readFileSync(latest, 'utf8')) : undefined;
  // A run that failed before its report leaves the one before it in place: that one is not this run's.
  if (!report || report.at < startedAt) {
    failed.push(`run ${k} wrote no report`);
    continue;
  }
  reports.push(report);
}

const at = new Date().toISOString();
const targets = targetsOverRuns(reports.map((r) => r.targets ?? []));
const summary = { at, runs: reports.map((r) => ({ at: r.at, violations: r.violations, targets: r.targets ?? [] })), targets, failed };
writeFileSync(join(dir, `latest-${runs}.json`), JSON.stringify(summary, null, 2));
const md = renderTargetsOverRuns(at, reports.map((r) => r.at), targets) + (failed.length > 0 ? `\nFailed: ${failed.join('; ')}\n` : '');
writeFileSync(join(dir, `latest-${runs}.md`), md);
process.stdout.write('\n' + md + '\n');
if (failed.length > 0) process.exit(1);
