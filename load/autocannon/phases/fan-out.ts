/**
 * 7. Fan-out: one auction.created told to 1,000,000 followers (BENCH_FANOUT_FOLLOWERS)
 * with every role running as `stampede all` runs them (api, relay, a worker
 * settling orders and auctions, the notifier telling buyers at niceness
 * STAMPEDE_NOTIFIER_NICE, the scheduler): the operator creates the auction over
 * HTTP; measured from the create to the last inbox row (the fan-out
 * recorded finished), as inbox rows per second. The followers are seeded
 * with generate_series (no accounts: in_app only, no e-mail to flood the
 * mail catcher); every row is still pushed live (Redis pub/sub) chunk by chunk.
 * Target: at most 30 s.
 */
import { cpuShares, cpuSnapshot, formatShares } from '../cpu.js';
import { startApi, startBackRoles, stopChild } from '../processes.js';
import type { Phase } from '../results.js';
import { cfg, env, log, settings, type Bench, type Findings } from './context.js';
import { letTheHostSettle } from './setup.js';
import { findFanOut } from '../../../src/notifications/repository.js';

const FOLLOWERS = Number(process.env.BENCH_FANOUT_FOLLOWERS ?? 1_000_000);
const TARGET_S = 30;
const TIMEOUT_MS = 600_000;
const COLLECTION = 'Bench watches';

export async function runFanOutPhase(bench: Bench, findings: Findings): Promise<Phase> {
  const seedStart = Date.now();
  await bench.pool.query('DELETE FROM buyer_interests WHERE collection = $1', [COLLECTION]);
  await bench.pool.query(
    `INSERT INTO buyer_interests (buyer_id, collection) SELECT 'usr_f' || lpad(g::text, 11, '0'), $1 FROM generate_series(1, $2) AS g`, [COLLECTION, FOLLOWERS],
  );
  const seedS = (Date.now() - seedStart) / 1000;
  log.info({ followers: FOLLOWERS, seedS }, 'fan-out: followers seeded');
  await letTheHostSettle(bench);

  const api = await startApi(env, settings.apiPort);
  const roles = await startBackRoles(env).catch(async (err) => {
    await stopChild(api);
    throw err;
  });
  try {
    const roleNames = new Map([[api.pid!, 'api'], ...roles.names, [process.pid, 'bench']]);
    const cpuBefore = cpuSnapshot(roleNames);
    const startsAt = Date.now() + 3_600_000;
    const createdAt = Date.now();
    const res = await fetch(`http://127.0.0.1:${settings.apiPort}/v1/auctions`, {
      method: 'POST', headers: { 'x-api-key': env.STAMPEDE_OPERATOR_KEY!, 'content-type': 'application/json' },
      body: JSON.stringify({
        title: 'Bench chronograph', collection: COLLECTION, currency: 'EUR', startPrice: 10_000, reservePrice: 0, startsAt: new Date(startsAt).toISOString(),
        endsAt: new Date(startsAt + 600_000).toISOString(), softCloseSeconds: 10, increment: { type: 'absolute', amount: 100 },
      }),
    });
    if (res.status !== 201) throw new Error(`fan-out: create answered ${res.status} ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    const eventId = `${id}:created`;
    let finished: { in_app: number; finished_at: Date } | undefined;
    while (!finished) {
      if (Date.now() - createdAt > TIMEOUT_MS) throw new Error(`fan-out: not finished after ${TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
      const f = await findFanOut(bench.pool, eventId);
      if (f?.finishedAt) finished = { in_app: f.inApp, finished_at: f.finishedAt };
    }
    const cpu = cpuShares(cpuBefore, cpuSnapshot(roleNames), (Date.now() - createdAt) / 1000);
    const { rows: last } = await bench.pool.query<{ last: Date; n: number }>(
      'SELECT max(created_at) AS last, count(*)::int AS n FROM notifications WHERE event_id = $1', [eventId]);
    const seconds = (last[0]!.last.getTime() - createdAt) / 1000;
    const rows = last[0]!.n;
    if (rows !== FOLLOWERS) findings.violations.push(`fan-out: ${rows} inbox rows for ${FOLLOWERS} followers`);
    const phase: Phase = {
      name: `7. fan-out: auction.created to ${FOLLOWERS.toLocaleString('en')} followers`, requests: rows, durationS: seconds,
      rps: Math.round(rows / seconds), p50: 0, p99: 0, max: 0, statuses: { rows },
      note: `inbox rows/s from the create to the last row (target <= ${TARGET_S} s: ${seconds <= TARGET_S ? 'met' : 'MISSED'}); chunk ${cfg.STAMPEDE_FANOUT_CHUNK}, parts ${cfg.STAMPEDE_FANOUT_PARTS}; followers seeded in ${seedS.toFixed(1)} s; CPU (share of one core): ${formatShares(cpu)}`,
    };
    findings.phases.push(phase);
    log.info(phase, 'fan-out');
    return phase;
  } finally {
    await roles.stop();
    await stopChild(api);
  }
}
