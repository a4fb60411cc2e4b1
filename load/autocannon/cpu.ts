/**
 * Where the CPU went during a measured window, per process, read from
 * /proc/<pid>/stat (utime + stime) before and after. The bench prints it
 * next to the settlement figure so a reader sees what bounds the drain.
 * A process that ended inside the window (an autovacuum worker, say) is
 * not counted, so the figures are lower bounds.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export type CpuSnapshot = Map<number, { name: string; ticks: number }>;

/** Every process's CPU ticks so far, named by `names` (pid -> role) or its command. */
export function cpuSnapshot(names: Map<number, string> = new Map()): CpuSnapshot {
  const out: CpuSnapshot = new Map();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out; // not Linux: no figures
  }
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(p);
      out.set(pid, { name: names.get(pid) ?? comm, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the process ended between readdir and read
    }
  }
  return out;
}

/** CPU ticks per process name between two snapshots, `nameOf` merging the processes counted as one (postgres backends). */
function ticksByName(before: CpuSnapshot, after: CpuSnapshot, nameOf: (name: string) => string): Map<string, number> {
  const by = new Map<string, number>();
  for (const [pid, a] of after) {
    const ticks = a.ticks - (before.get(pid)?.ticks ?? 0);
    if (ticks <= 0) continue;
    const name = nameOf(a.name);
    by.set(name, (by.get(name) ?? 0) + ticks);
  }
  return by;
}

const postgresAsOne = (name: string): string => (name.startsWith('postgres') ? 'postgres' : name);

/** Share of one core per process name over the window, largest first (postgres backends summed; kernel threads as "kernel"). */
export function cpuShares(before: CpuSnapshot, after: CpuSnapshot, seconds: number, minShare = 0.02): [string, number][] {
  const by = ticksByName(before, after, (name) => (name.startsWith('kworker') || name.startsWith('ksoftirq') ? 'kernel' : postgresAsOne(name)));
  return [...by]
    .map(([name, ticks]): [string, number] => [name, ticks / TICKS_PER_SECOND / seconds])
    .filter(([, share]) => share >= minShare)
    .sort((x, y) => y[1] - x[1]);
}

/** Microseconds of CPU per unit of work (a request, an order) that `ticks` make. */
export const microsPerUnit = (ticks: number, units: number): number => Math.round((ticks * (1_000_000 / TICKS_PER_SECOND)) / units);

/**
 * CPU per unit of work per process name between two snapshots (postgres
 * backends summed), costliest first; processes under 1 µs per unit left out.
 */
export function cpuCostByProcess(before: CpuSnapshot, after: CpuSnapshot, units: number): { name: string; ticks: number; usPerUnit: number }[] {
  return [...ticksByName(before, after, postgresAsOne)]
    .filter(([, ticks]) => microsPerUnit(ticks, units) >= 1)
    .sort((x, y) => y[1] - x[1])
    .map(([name, ticks]) => ({ name, ticks, usPerUnit: microsPerUnit(ticks, units) }));
}

export const formatShares = (shares: [string, number][]): string => shares.map(([n, s]) => `${n} ${Math.round(s * 100)}%`).join(', ');

/** CPU time in µs per request that the processes `pids` spent between two snapshots. */
export function cpuPerRequest(before: CpuSnapshot, after: CpuSnapshot, pids: number[], requests: number): number {
  const ticks = pids.reduce((n, pid) => n + (after.get(pid)?.ticks ?? 0) - (before.get(pid)?.ticks ?? 0), 0);
  return microsPerUnit(ticks, Math.max(requests, 1));
}
