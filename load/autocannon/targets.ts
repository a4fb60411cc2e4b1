/**
 * The bench's targets (issue 17, and the notifications and webhooks issues'
 * goals), defined once: each is computed from the figures of the phases a
 * run measured, and a target whose phases did not run is absent from the
 * report (never "not met"). latest.json carries them as `targets`, latest.md
 * as a table, and `npm run bench:3` takes min, median and max of each over
 * its runs, judging "met" on the median run.
 */

/** What the phases of one run measured, as the targets read it; a field is absent when its phase did not run. */
export interface BenchFigures {
  /** 2, 3 and 4 against the higher of the baselines 1 and 1b. */
  acceptRatio?: number;
  flashSaleRatio?: number;
  stormRatio?: number;
  /** 6 against the higher of its baselines 6a and 6b. */
  bidWarRatio?: number;
  /** 2b and 2b′: the accept path and the bare uWS paced at the same rate, same generator (ms). */
  openLoop?: { acceptP99: number; bareP99: number; rate: number };
  /** 9: acceptance (the 202) to `confirmed`, every role running, purchases paced; the backlog sampled every second. */
  endToEnd?: { p99Ms: number; rate: number; backlogMax: number; backlogLast: number };
  /** 5: orders/s from the first order. */
  settleOrdersPerSecond?: number;
  /** 10: the accept path's first and last 10 s windows with a million distinct buyers (req/s, api CPU µs per request). */
  millionBuyers?: { firstRps: number; lastRps: number; firstCpuUs: number; lastCpuUs: number };
  /** 7: seconds from the create to the last inbox row. */
  fanOutS?: number;
  /** 8: ms from the operator's 202 to the last client. */
  livePushMs?: number;
  /** 8b: deliveries/s to the healthy endpoints beside a dead and a slow one. */
  webhooksPerSecond?: number;
}

export interface Target {
  id: string;
  goal: string;
  value: number;
  unit: string;
  met: boolean;
}

interface Definition {
  id: string;
  goal: string;
  unit: string;
  /** The target's value and whether it is met, or undefined when its phases did not run. */
  compute(f: BenchFigures): { value: number; met: boolean } | undefined;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const atLeast = (value: number | undefined, goal: number, digits = 2) => (value === undefined ? undefined : { value: round(value, digits), met: value >= goal });
const atMost = (value: number | undefined, goal: number, digits = 2) => (value === undefined ? undefined : { value: round(value, digits), met: value <= goal });

/** CPU per request "flat": the last window's at most this much above the first's. */
export const CPU_FLAT_RATIO = 1.1;

export const TARGETS: readonly Definition[] = [
  { id: 'accept', goal: 'accept path ≥ 0.5× bare uWS', unit: '× bare uWS', compute: (f) => atLeast(f.acceptRatio, 0.5) },
  { id: 'flashSale', goal: 'flash sale (100 items, 100k buyers) ≥ 0.8× bare uWS', unit: '× bare uWS', compute: (f) => atLeast(f.flashSaleRatio, 0.8) },
  { id: 'storm', goal: 'sold-out storm ≥ 0.95× bare uWS', unit: '× bare uWS', compute: (f) => atLeast(f.stormRatio, 0.95) },
  { id: 'bidWar', goal: 'one hot auction ≥ 0.5× bare uWS', unit: '× bare uWS', compute: (f) => atLeast(f.bidWarRatio, 0.5) },
  {
    id: 'openLoopTail', goal: 'accept path paced at half its max: p99 ≤ 3× the p99 of bare uWS paced at the same rate', unit: '× bare uWS paced p99',
    // A bare p99 of 0 (never measured so low) would make any tail infinite: a floor of 0.01 ms, the generator's resolution.
    compute: (f) => (f.openLoop ? atMost(f.openLoop.acceptP99 / Math.max(f.openLoop.bareP99, 0.01), 3) : undefined),
  },
  {
    id: 'endToEnd', goal: 'every role running, purchases paced at half the max: p99 202 → confirmed ≤ 1 s, backlog bounded (at the end ≤ 1 s of purchases)', unit: 'ms p99',
    compute: (f) => (f.endToEnd ? { value: round(f.endToEnd.p99Ms, 0), met: f.endToEnd.p99Ms <= 1000 && endToEndBacklogBounded(f.endToEnd) } : undefined),
  },
  { id: 'settle', goal: 'settlement drain ≥ 20,000 orders/s from the first order', unit: 'orders/s', compute: (f) => atLeast(f.settleOrdersPerSecond, 20_000, 0) },
  {
    id: 'millionBuyers', goal: `1,000,000 distinct buyers on one api for 60 s: last 10 s ≥ 0.9× the first, CPU per request flat (≤ ${CPU_FLAT_RATIO}× the first)`, unit: '× first 10 s',
    compute: (f) => {
      if (!f.millionBuyers) return undefined;
      const { firstRps, lastRps, firstCpuUs, lastCpuUs } = f.millionBuyers;
      const ratio = lastRps / Math.max(firstRps, 1);
      return { value: round(ratio, 2), met: ratio >= 0.9 && lastCpuUs <= CPU_FLAT_RATIO * firstCpuUs };
    },
  },
  { id: 'fanOut', goal: 'auction.created to 1,000,000 followers ≤ 30 s', unit: 's', compute: (f) => atMost(f.fanOutS, 30, 1) },
  { id: 'livePush', goal: 'one announcement to 10,000 connected buyers ≤ 1 s', unit: 'ms', compute: (f) => atMost(f.livePushMs, 1000, 0) },
  { id: 'webhooks', goal: 'webhook deliveries ≥ 2,000/s beside a dead and a slow endpoint', unit: 'deliveries/s', compute: (f) => atLeast(f.webhooksPerSecond, 2000, 0) },
];

/** The backlog (purchases accepted, not yet settled) is bounded when at the end it holds at most one second of purchases. */
export const endToEndBacklogBounded = (e: { rate: number; backlogLast: number }): boolean => e.backlogLast <= e.rate;

/** The targets this run's figures can judge, in the order of TARGETS. */
export function computeTargets(f: BenchFigures): Target[] {
  const out: Target[] = [];
  for (const d of TARGETS) {
    const r = d.compute(f);
    if (r) out.push({ id: d.id, goal: d.goal, value: r.value, unit: d.unit, met: r.met });
  }
  return out;
}

/** One target over several runs: min, median and max of its value, met judged on the median run. */
export interface TargetOverRuns {
  id: string;
  goal: string;
  unit: string;
  min: number;
  median: number;
  max: number;
  /** Runs that measured it, and how many of them met it. */
  runs: number;
  metRuns: number;
  met: boolean;
}

/**
 * Each target present in any run, over the runs that have it. The median run
 * is the middle one by value (the lower middle for an even count); its `met`
 * decides, so a target with a second condition (endToEnd's backlog,
 * millionBuyers' CPU) is judged on that run's both conditions.
 */
export function targetsOverRuns(runs: Target[][]): TargetOverRuns[] {
  const out: TargetOverRuns[] = [];
  const ids = TARGETS.map((d) => d.id).filter((id) => runs.some((r) => r.some((t) => t.id === id)));
  for (const id of ids) {
    const seen = runs.flatMap((r) => r.filter((t) => t.id === id)).sort((a, b) => a.value - b.value);
    const median = seen[Math.floor((seen.length - 1) / 2)]!;
    out.push({
      id, goal: median.goal, unit: median.unit, min: seen[0]!.value, median: median.value, max: seen.at(-1)!.value,
      runs: seen.length, metRuns: seen.filter((t) => t.met).length, met: median.met,
    });
  }
  return out;
}
