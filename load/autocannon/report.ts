/**
 * The bench's report: one JSON file per run (bench-<time>.json), latest.json
 * and latest.md in load/results/ (the README quotes latest.md), and the same
 * markdown on stdout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Phase } from './results.js';
import type { Target, TargetOverRuns } from './targets.js';

export interface Machine {
  host: string;
  cpu: string;
  cores: number;
  memGiB: number;
}

/** latest.json, field by field, in this order. */
export interface BenchReport {
  at: string;
  machine: Machine;
  node: string;
  connections: number;
  phases: Phase[];
  /** The targets this run's phases judge (targets.ts); absent in reports from before them. */
  targets?: Target[];
  /** The run's totals, one line each under the table. */
  extra: Record<string, unknown>;
  violations: string[];
}

export const thisMachine = (): Machine => ({ host: hostname(), cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30) });

export function renderMarkdown(report: BenchReport): string {
  const { machine } = report;
  const rows = report.phases.map((p) =>
    `| ${p.name} | ${p.rps.toLocaleString('en')} | ${p.p50} | ${p.p99} | ${p.max} | ${Object.entries(p.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')} | ${p.ratioToBaseline?.toFixed(2) ?? '—'} | ${p.note ?? ''} |`,
  );
  return [
    `Stampede bench, ${report.at} on ${machine.cpu} (${machine.cores} cores, ${machine.memGiB} GiB), Node ${report.node}, ${report.connections} connections`,
    '',
    '| phase | req/s | p50 ms | p99 ms | max ms | statuses | × baseline | note |',
    '|---|---:|---:|---:|---:|---|---:|---|',
    ...rows,
    '',
    ...Object.entries(report.extra).map(([k, v]) => `- ${k}: ${typeof v === 'number' ? v.toLocaleString('en') : String(v)}`),
    '',
    ...(report.targets ? renderTargets(report.targets) : []),
  ].join('\n');
}

const fmt = (n: number) => n.toLocaleString('en', { maximumFractionDigits: 2 });

/** The targets as a table (then a blank line); the README's figures table is this table. */
export function renderTargets(targets: Target[]): string[] {
  return [
    '| target | goal | value | met |',
    '|---|---|---:|---|',
    ...targets.map((t) => `| \`${t.id}\` | ${t.goal} | ${fmt(t.value)} ${t.unit} | ${t.met ? 'yes' : 'no'} |`),
    '',
  ];
}

/** `npm run bench:3`'s report: each target's min, median and max over the runs, met judged on the median. */
export function renderTargetsOverRuns(at: string, runsAt: string[], targets: TargetOverRuns[]): string {
  return [
    `Stampede bench, ${runsAt.length} runs back to back (${runsAt.join(', ')}), summarised ${at}`,
    '',
    '| target | goal | min | median | max | unit | met (median) | runs met |',
    '|---|---|---:|---:|---:|---|---|---:|',
    ...targets.map((t) => `| \`${t.id}\` | ${t.goal} | ${fmt(t.min)} | ${fmt(t.median)} | ${fmt(t.max)} | ${t.unit} | ${t.met ? 'yes' : 'no'} | ${t.metRuns}/${t.runs} |`),
    '',
  ].join('\n');
}

/** Writes the report into `dir` and prints its markdown. */
export function writeReport(dir: string, report: BenchReport): void {
  const md = renderMarkdown(report);
  mkdirSync(dir, { recursive: true });
  const { at, machine, node, connections, phases, targets, extra, violations } = report;
  const json = JSON.stringify({ at, machine, node, connections, phases, targets, extra, violations }, null, 2);
  writeFileSync(join(dir, `bench-${at.replace(/[:.]/g, '-')}.json`), json);
  writeFileSync(join(dir, 'latest.json'), json);
  writeFileSync(join(dir, 'latest.md'), md);
  process.stdout.write('\n' + md + '\n');
}
