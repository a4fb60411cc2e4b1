/**
 * Which of the bench's phases a run measures (STAMPEDE_BENCH_PHASES, all
 * when unset), and where it reports: a whole run to load/results/, a
 * selection to load/results/<phases>/ so latest.json stays the last whole
 * run. Shared by bench.ts and bench-runs.ts (`npm run bench:3`).
 */
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';

export const PHASES = ['baseline', 'api', 'drain', 'bidwar', 'fanout', 'livepush', 'webhooks', 'endtoend', 'cluster', 'millionbuyers'] as const;

export function selectedPhases(spec = process.env.STAMPEDE_BENCH_PHASES): Set<string> {
  const selected = new Set((spec ?? PHASES.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== ''));
  for (const name of selected) if (!(PHASES as readonly string[]).includes(name)) throw new Error(`STAMPEDE_BENCH_PHASES: no phase ${name} (phases: ${PHASES.join(', ')})`);
  if (selected.has('api') && !selected.has('baseline')) throw new Error('STAMPEDE_BENCH_PHASES: api needs baseline (its ratios)');
  if (selected.has('drain') && !selected.has('api')) throw new Error('STAMPEDE_BENCH_PHASES: drain needs api (its backlog)');
  return selected;
}

/** The folder a run of these phases reports to. */
export const resultsDir = (selected: Set<string>): string =>
  join(projectRoot, 'load', 'results', selected.size < PHASES.length ? [...selected].join('+') : '');
