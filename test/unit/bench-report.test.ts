/** The bench's report: latest.md is latest.json rendered, so the markdown a run prints can be rebuilt from its JSON. */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';
import { renderMarkdown, writeReport, type BenchReport } from '../../load/autocannon/report.js';

const results = join(projectRoot, 'load', 'results');

t.test('latest.json renders as latest.md, row by row', async (t) => {
  const report: BenchReport = JSON.parse(readFileSync(join(results, 'latest.json'), 'utf8'));
  t.equal(renderMarkdown(report), readFileSync(join(results, 'latest.md'), 'utf8'));
});

t.test('a phase without a ratio or note shows a dash and an empty cell; numbers are grouped', async (t) => {
  const md = renderMarkdown({
    at: '2026-01-01T00:00:00.000Z', machine: { host: 'h', cpu: 'CPU', cores: 2, memGiB: 4 }, node: 'v20.0.0', connections: 10,
    phases: [{ name: 'p', requests: 12345, durationS: 1, rps: 12345, p50: 1, p99: 2, max: 3, statuses: { 202: 12000, 409: 345 } }],
    extra: { count: 1234567, text: 'a; b' }, violations: [],
  });
  t.equal(md, [
    'Stampede bench, 2026-01-01T00:00:00.000Z on CPU (2 cores, 4 GiB), Node v20.0.0, 10 connections',
    '',
    '| phase | req/s | p50 ms | p99 ms | max ms | statuses | × baseline | note |',
    '|---|---:|---:|---:|---:|---|---:|---|',
    '| p | 12,345 | 1 | 2 | 3 | 202: 12000, 409: 345 | — |  |',
    '',
    '- count: 1,234,567',
    '- text: a; b',
    '',
  ].join('\n'));
});

t.test('the report is written as latest.json, latest.md and a stamped copy, fields in latest.json\'s order', async (t) => {
  const latestJson = readFileSync(join(results, 'latest.json'), 'utf8');
  const { violations, extra, ...rest }: BenchReport = JSON.parse(latestJson);
  const dir = t.testdir({});
  const printed: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => printed.push(chunk) > 0) as typeof process.stdout.write;
  try {
    writeReport(dir, { violations, extra, ...rest }); // fields out of order on purpose
  } finally {
    process.stdout.write = write;
  }
  t.equal(readFileSync(join(dir, 'latest.json'), 'utf8'), latestJson);
  t.equal(readFileSync(join(dir, 'latest.md'), 'utf8'), readFileSync(join(results, 'latest.md'), 'utf8'));
  t.equal(readFileSync(join(dir, `bench-${rest.at.replace(/[:.]/g, '-')}.json`), 'utf8'), latestJson);
  t.same(readdirSync(dir).sort(), [`bench-${rest.at.replace(/[:.]/g, '-')}.json`, 'latest.json', 'latest.md']);
  t.equal(printed.join(''), '\n' + readFileSync(join(results, 'latest.md'), 'utf8') + '\n');
});
