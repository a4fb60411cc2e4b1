/** The load tools' CPU accounting (load/autocannon/cpu.ts), on hand-made /proc snapshots. */
import t from 'tap';
import { cpuCostByProcess, cpuPerRequest, cpuShares, type CpuSnapshot } from '../../load/autocannon/cpu.js';

const snapshot = (rows: [number, string, number][]): CpuSnapshot => new Map(rows.map(([pid, name, ticks]) => [pid, { name, ticks }]));
const before = snapshot([[1, 'api', 100], [2, 'postgres: a', 10], [3, 'postgres: b', 10], [4, 'kworker/0', 0], [5, 'idle', 7]]);
// pid 6 started inside the window: all of its ticks count.
const after = snapshot([[1, 'api', 300], [2, 'postgres: a', 60], [3, 'postgres: b', 60], [4, 'kworker/0', 1], [5, 'idle', 7], [6, 'redis-server', 50]]);

t.test('shares of one core: postgres backends summed, kernel threads as one, small ones left out, largest first', async (t) => {
  t.same(cpuShares(before, after, 2), [['api', 1], ['postgres', 0.5], ['redis-server', 0.25]]);
  t.same(cpuShares(before, after, 2, 0), [['api', 1], ['postgres', 0.5], ['redis-server', 0.25], ['kernel', 0.005]]);
});

t.test('CPU per unit of work by process: µs, postgres summed, under 1 µs left out, costliest first', async (t) => {
  t.same(cpuCostByProcess(before, after, 1000), [
    { name: 'api', ticks: 200, usPerUnit: 2000 },
    { name: 'postgres', ticks: 100, usPerUnit: 1000 },
    { name: 'redis-server', ticks: 50, usPerUnit: 500 },
    { name: 'kworker/0', ticks: 1, usPerUnit: 10 },
  ]);
  t.same(cpuCostByProcess(before, after, 30_000).map((p) => p.name), ['api', 'postgres', 'redis-server'], 'kworker: a third of a µs per unit');
});

t.test('CPU per request of chosen processes, never dividing by zero', async (t) => {
  t.equal(cpuPerRequest(before, after, [1, 6], 1000), 2500);
  t.equal(cpuPerRequest(before, after, [1], 0), 2_000_000);
});
