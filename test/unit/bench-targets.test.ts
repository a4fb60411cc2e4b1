/** The bench's targets (load/autocannon/targets.ts): each computed from its phases' figures, absent when they did not run, and judged on the median over runs. */
import t from 'tap';
import { computeTargets, targetsOverRuns, type BenchFigures, type Target } from '../../load/autocannon/targets.js';
import { renderMarkdown, renderTargets } from '../../load/autocannon/report.js';

const byId = (targets: Target[]) => Object.fromEntries(targets.map((x) => [x.id, x]));

t.test('a run of no phase judges no target', async (t) => {
  t.same(computeTargets({}), []);
});

t.test('only the targets whose phases ran are present, in the definitions\' order', async (t) => {
  t.same(computeTargets({ settleOrdersPerSecond: 12_888, acceptRatio: 0.36 }).map((x) => x.id), ['accept', 'settle']);
});

t.test('ratios and rates against their goals, at and either side of the threshold', async (t) => {
  const f: BenchFigures = { acceptRatio: 0.5, flashSaleRatio: 0.7999, stormRatio: 0.96, bidWarRatio: 0.35, settleOrdersPerSecond: 20_000, webhooksPerSecond: 1999, fanOutS: 30, livePushMs: 1001 };
  const got = byId(computeTargets(f));
  t.same(Object.fromEntries(Object.entries(got).map(([id, x]) => [id, x.met])), {
    accept: true, flashSale: false, storm: true, bidWar: false, settle: true, fanOut: true, livePush: false, webhooks: false,
  });
  t.equal(got.accept!.unit, '× bare uWS');
  t.equal(got.flashSale!.value, 0.8, 'rounded to two places for the report; judged unrounded');
});

t.test('openLoopTail is the accept path\'s paced p99 over the bare server\'s, at most 3×', async (t) => {
  t.match(byId(computeTargets({ openLoop: { acceptP99: 26, bareP99: 2, rate: 4960 } })).openLoopTail, { value: 13, met: false });
  t.match(byId(computeTargets({ openLoop: { acceptP99: 3, bareP99: 1, rate: 4960 } })).openLoopTail, { value: 3, met: true });
  t.match(byId(computeTargets({ openLoop: { acceptP99: 0.5, bareP99: 0, rate: 10 } })).openLoopTail, { value: 50, met: false }, 'a bare p99 of 0 counts as 0.01 ms');
});

t.test('endToEnd needs the p99 within 1 s and the backlog at the end within one second of purchases', async (t) => {
  const e = (p99Ms: number, backlogLast: number) => byId(computeTargets({ endToEnd: { p99Ms, rate: 5000, backlogMax: 9000, backlogLast } })).endToEnd!;
  t.match(e(1000, 5000), { value: 1000, unit: 'ms p99', met: true });
  t.match(e(1001, 10), { met: false });
  t.match(e(200, 5001), { met: false }, 'a backlog still growing at the end');
});

t.test('millionBuyers: the last window at 0.9× the first or better, and CPU per request within 1.1×', async (t) => {
  const m = (lastRps: number, lastCpuUs: number) => byId(computeTargets({ millionBuyers: { firstRps: 10_000, lastRps, firstCpuUs: 100, lastCpuUs } })).millionBuyers!;
  t.match(m(9000, 110), { value: 0.9, met: true });
  t.match(m(8999, 100), { met: false });
  t.match(m(10_000, 111), { value: 1, met: false }, 'CPU per request rising is a miss even at full speed');
});

t.test('over runs: min, median and max per target, met judged on the median run', async (t) => {
  const run = (accept: number, settle?: number) => computeTargets({ acceptRatio: accept, ...(settle === undefined ? {} : { settleOrdersPerSecond: settle }) });
  const over = targetsOverRuns([run(0.52), run(0.45, 21_000), run(0.51, 19_000)]);
  t.match(over[0], { id: 'accept', min: 0.45, median: 0.51, max: 0.52, runs: 3, metRuns: 2, met: true });
  t.match(over[1], { id: 'settle', min: 19_000, median: 19_000, max: 21_000, runs: 2, metRuns: 1, met: false }, 'an even count takes the lower middle');
  t.same(targetsOverRuns([]), []);
});

t.test('the median run\'s second condition decides, not its value alone', async (t) => {
  const run = (p99Ms: number, backlogLast: number) => computeTargets({ endToEnd: { p99Ms, rate: 100, backlogMax: 0, backlogLast } });
  t.match(targetsOverRuns([run(100, 0), run(500, 1000), run(900, 0)])[0], { median: 500, met: false, metRuns: 2 });
});

t.test('latest.md shows the targets last, with their goals; a report without them shows none', async (t) => {
  const targets = computeTargets({ acceptRatio: 0.36 });
  t.same(renderTargets(targets), [
    '| target | goal | value | met |',
    '|---|---|---:|---|',
    '| `accept` | accept path ≥ 0.5× bare uWS | 0.36 × bare uWS | no |',
    '',
  ]);
  const report = { at: 'a', machine: { host: 'h', cpu: 'c', cores: 2, memGiB: 1 }, node: 'v', connections: 1, phases: [], extra: { x: 1 }, violations: [] };
  t.ok(renderMarkdown({ ...report, targets }).endsWith('- x: 1\n\n| target | goal | value | met |\n|---|---|---:|---|\n| `accept` | accept path ≥ 0.5× bare uWS | 0.36 × bare uWS | no |\n'));
  t.notMatch(renderMarkdown(report), /\| target \|/);
});
