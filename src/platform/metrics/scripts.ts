/**
 * The api's decisions: each script call it makes, by script and outcome
 * (the one outcome table, src/platform/redis/outcomes.ts, in snake case:
 * `applied`, `sold_out`, …; a call deciding several bids counts each), and
 * the call's latency as the api sees it (FCALL sent to answer read).
 */
import type { Histogram } from 'prom-client';
import { Outcome } from '../redis/outcomes.js';
import type { ScriptObserver } from '../redis/functions.js';
import { countersFrom, histogram, type Registry } from './registry.js';

const OUTCOME_NAMES = new Map<number, string>(
  Object.entries(Outcome).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`))]),
);

export function scriptMetrics(registry: Registry): ScriptObserver {
  /** script -> outcome code -> calls */
  const decisions = new Map<string, Map<number, number>>();
  const durations = histogram(registry, 'stampede_script_duration_seconds', 'Redis script calls as the caller sees them, from FCALL sent to its answer read.', ['script']);
  const timers = new Map<string, Histogram.Internal<string>>();
  countersFrom(registry, 'stampede_script_decisions_total', 'Decisions by script and outcome (one per bid of a placeBids call).', ['script', 'outcome'], function* () {
    for (const [script, codes] of decisions) for (const [code, n] of codes) yield [{ script, outcome: OUTCOME_NAMES.get(code) ?? 'other' }, n];
  });
  const count = (script: string, code: unknown) => {
    let codes = decisions.get(script);
    if (!codes) decisions.set(script, (codes = new Map()));
    const c = typeof code === 'number' ? code : Number(code);
    codes.set(c, (codes.get(c) ?? 0) + 1);
  };
  return (script, reply, seconds) => {
    let timer = timers.get(script);
    if (!timer) timers.set(script, (timer = durations.labels(script)));
    timer.observe(seconds);
    if (!Array.isArray(reply) || reply.length === 0) return;
    if (Array.isArray(reply[0])) for (const one of reply) count(script, (one as unknown[])[0]);
    else count(script, reply[0]);
  };
}
