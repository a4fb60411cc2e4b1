/**
 * 5. The settlement drain: relay, worker and notifier start on the backlog
 * the api phases left in the outbox, as `stampede all` runs them (the worker
 * settles orders and auctions, the notifier tells buyers at a lower CPU
 * priority); orders/s from their launch until every accepted purchase is
 * settled in Postgres, and when the last buyer was told.
 * BENCH_DRAIN_NOTIFIER=0 runs no notifier: settlement alone, to compare.
 */
import { saleKeys } from '../../../src/sales/keys.js';
import { cpuShares, cpuSnapshot, formatShares } from '../cpu.js';
import { startSettlementRole, stopChild } from '../processes.js';
import type { Phase } from '../results.js';
import { env, log, type Bench, type Findings } from './context.js';

const DRAIN_TIMEOUT_MS = 600_000;
const WITH_NOTIFIER = process.env.BENCH_DRAIN_NOTIFIER !== '0';

export interface Drain {
  phase: Phase;
  /** Orders settled per second from the first one, the relay's and worker's start-up excluded. */
  steadyOrdersPerSecond: number;
  /** Purchase results in the buyers' inboxes, and how long after the last order the last one came. */
  toldRows: number;
  toldAfterDrainS: number;
}

export async function drainSettlement(bench: Bench, findings: Findings): Promise<Drain> {
  const saleIds = bench.sales.map((s) => s.id);
  const drainStart = Date.now();
  const relay = await startSettlementRole(env, 'relay');
  const settling = { ...env, STAMPEDE_WORKER_QUEUES: 'orders,auctions' };
  const worker = await startSettlementRole(settling, 'worker').catch(async (e) => {
    await stopChild(relay);
    throw e;
  });
  const notifier = WITH_NOTIFIER ? await startSettlementRole(env, 'notifier').catch(async (e) => {
    await Promise.all([stopChild(worker), stopChild(relay)]);
    throw e;
  }) : undefined;
  // Progress is read from Redis, where settlement lands right after each
  // Postgres commit: the sales' `reserved` counters fall to 0 when every
  // accepted purchase is settled. (Counting orders in Postgres every 100 ms
  // cost Postgres a share of the very CPU the drain is measured on.) The
  // orders are counted in Postgres once, at the end.
  const reservedNow = async () => {
    const values = await Promise.all(saleIds.map((id) => bench.redis.hget(saleKeys.sale(id), 'reserved')));
    // A missing sale would read as "nothing reserved" and end the drain at once.
    const missing = saleIds.filter((_, i) => values[i] === null);
    if (missing.length > 0) throw new Error(`drain: sales ${missing.join(', ')} are not in Redis`);
    return values.reduce((n, v) => n + Number(v), 0);
  };
  const roleNames = new Map([[relay.pid!, 'relay'], [worker.pid!, 'worker'], ...(notifier ? [[notifier.pid!, 'notifier'] as [number, string]] : []), [process.pid, 'bench']]);
  const cpuBefore = cpuSnapshot(roleNames);
  const cpuFrom = Date.now();
  const reservedAtStart = await reservedNow();
  let firstOrderAt = 0;
  for (;;) {
    const reserved = await reservedNow();
    if (reserved < reservedAtStart && firstOrderAt === 0) firstOrderAt = Date.now();
    if (reserved <= 0) break;
    if (Date.now() - drainStart > DRAIN_TIMEOUT_MS) {
      findings.violations.push(`drain: ${reserved} purchases still reserved after 10 minutes`);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const { rows: counted } = await bench.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE sale_id = ANY($1)', [saleIds]);
  const settled = counted[0]!.n;
  const drainS = (Date.now() - drainStart) / 1000;
  const drainCpu = cpuShares(cpuBefore, cpuSnapshot(roleNames), (Date.now() - cpuFrom) / 1000);
  const steadyS = firstOrderAt ? (Date.now() - firstOrderAt) / 1000 : drainS;
  const steadyOrdersPerSecond = Math.round(settled / Math.max(steadyS, 0.001));
  const drain: Phase = {
    name: '5. settlement drain', requests: settled, durationS: drainS, rps: Math.round(settled / drainS), p50: 0, p99: 0, max: 0,
    statuses: { orders: settled },
    note: `orders/s into Postgres from launching relay + worker on the backlog; ${steadyOrdersPerSecond.toLocaleString('en')}/s from the first order (start-up excluded); CPU (share of one core): ${formatShares(drainCpu)}`,
  };
  // The notifier tells each settled purchase to its buyer (purchase.confirmed / failed) while settlement runs. Counted once settlement is done.
  const told = notifier ? await buyersTold(bench, settled) : { rows: 0, afterDrainS: 0 };
  drain.note += notifier
    ? `; buyers told (purchase results in their inboxes): ${told.rows.toLocaleString('en')}, the last ${told.afterDrainS.toFixed(1)} s after the last order (${Math.round(told.rows / (drainS + told.afterDrainS)).toLocaleString('en')} rows/s over the drain)`
    : '; no notifier (BENCH_DRAIN_NOTIFIER=0): nobody told';
  if (notifier && told.rows < settled) findings.violations.push(`drain: ${settled - told.rows} settled purchases not told to their buyers after ${TOLD_TIMEOUT_MS / 1000} s`);
  findings.phases.push(drain);
  log.info(drain, 'drain');
  // Let the Redis side of settlement finish before auditing.
  await new Promise((r) => setTimeout(r, 1000));
  if (notifier) await stopChild(notifier);
  await stopChild(worker);
  await stopChild(relay);
  return { phase: drain, steadyOrdersPerSecond, toldRows: told.rows, toldAfterDrainS: told.afterDrainS };
}

const TOLD_TIMEOUT_MS = 120_000;

/** Waits until `settled` purchase results are in the buyers' inboxes (or the timeout); how many, and how long after the drain. */
async function buyersTold(bench: Bench, settled: number): Promise<{ rows: number; afterDrainS: number }> {
  const from = Date.now();
  const count = async () => (await bench.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM notifications WHERE type LIKE 'purchase.%'")).rows[0]!.n;
  let rows = await count();
  while (rows < settled && Date.now() - from < TOLD_TIMEOUT_MS) {
    await new Promise((r) => setTimeout(r, 250));
    rows = await count();
  }
  return { rows, afterDrainS: (Date.now() - from) / 1000 };
}
