/**
 * 7. Live push at scale: LIVE_PUSH_BUYERS connected buyers, half on
 * WebSocket (`ws /v1/live`, each subscribed to its own `user/<id>` topic
 * after the auth frame), half on SSE (`GET /v1/notifications/stream`), all
 * following one collection; one operator announcement to that collection.
 * The figure is the time from the operator's 202 to the last client holding
 * it (target: LIVE_PUSH_TARGET_MS), split into where it goes: the scheduler's
 * claim and the relay (202 -> the notifier starts it), the fan-out (inbox rows
 * written, rows pushed on Redis pub/sub, chunk by chunk) and the api node's
 * forwarding to the sockets, up to the last client.
 *
 * The clients run in their own processes (live-clients.ts), one per kind, so
 * the connections' file descriptors are spread and their CPU is not the
 * bench's; on a two-core host they share the cores with the api, Redis,
 * Postgres and the other roles as `stampede all` runs them (relay, a worker
 * settling orders and auctions, the notifier at its niceness, the
 * scheduler), which the figure includes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../../src/platform/paths.js';
import { randomId } from '../../../src/platform/ids.js';
import { startApi, startBackRoles, stopChild } from '../processes.js';
import type { Phase } from '../results.js';
import { env, log, settings, type Bench, type Findings } from './context.js';

export const LIVE_PUSH_BUYERS = Number(process.env.BENCH_LIVE_PUSH_BUYERS ?? 10_000);
export const LIVE_PUSH_TARGET_MS = 1_000;
const COLLECTION = 'bench: live push';
const RECEIVE_TIMEOUT_MS = 60_000;

interface Arrivals {
  received: number;
  firstAt: number;
  lastAt: number;
}

/** The buyer a token names (its `sub`), read without verifying: the bench issued it. */
const subOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')).sub;

function nextMessage<T>(child: ChildProcess, accept: (m: any) => boolean, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('a live client process did not answer in time')), timeoutMs);
    const onMessage = (m: any) => {
      if (!accept(m)) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m as T);
    };
    child.on('message', onMessage);
  });
}

/** The phase's row: its `max` is the 202 -> last client time (the livePush target). */
export async function runLivePushPhase(bench: Bench, findings: Findings): Promise<Phase> {
  const buyers = bench.buyerTokens.slice(0, LIVE_PUSH_BUYERS).map((token) => ({ id: subOf(token), token }));
  await bench.pool.query(
    'INSERT INTO buyer_interests (buyer_id, collection) SELECT id, $2 FROM unnest($1::text[]) AS id ON CONFLICT DO NOTHING',
    [buyers.map((b) => b.id), COLLECTION],
  );
  const roleEnv = { ...env, STAMPEDE_SSE_MAX_STREAMS: String(LIVE_PUSH_BUYERS) };
  const api = await startApi(roleEnv, settings.apiPort, settings.apiNodeFlags);
  const roles = await startBackRoles(roleEnv).catch(async (err) => {
    await stopChild(api);
    throw err;
  });
  const url = `http://127.0.0.1:${settings.apiPort}`;
  const half = Math.ceil(buyers.length / 2);
  const groups = [{ kind: 'ws' as const, buyers: buyers.slice(0, half) }, { kind: 'sse' as const, buyers: buyers.slice(half) }];
  const clients = groups.map(() => fork(join(projectRoot, 'dist', 'load', 'autocannon', 'live-clients.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    const connectFrom = Date.now();
    const ready = await Promise.all(clients.map((c, i) => {
      const answered = nextMessage<{ ready: number; failed: number }>(c, (m) => 'ready' in m, 180_000);
      c.send({ ...groups[i], url });
      return answered;
    }));
    const connected = ready.reduce((n, r) => n + r.ready, 0);
    log.info({ connected, failed: ready.reduce((n, r) => n + r.failed, 0), seconds: (Date.now() - connectFrom) / 1000 }, 'live push: clients connected');
    // Let the connections' start-up traffic (SSE preludes, subscriptions) settle.
    await new Promise((r) => setTimeout(r, 3_000));

    const marker = `bench-live-${randomId(10)}`;
    for (const c of clients) c.send({ marker });
    const arrivals = clients.map((c, i) => nextMessage<Arrivals>(c, (m) => 'received' in m && m.received === ready[i]!.ready, RECEIVE_TIMEOUT_MS).catch(() => {
      const report = nextMessage<Arrivals>(c, (m) => 'received' in m, 5_000);
      c.send({ report: true });
      return report;
    }));
    const posted = await fetch(`${url}/v1/ops/notifications`, {
      method: 'POST', headers: { 'x-api-key': env.STAMPEDE_OPERATOR_KEY!, 'content-type': 'application/json' },
      body: JSON.stringify({ audience: { collection: COLLECTION }, title: marker, body: 'One announcement to every connected buyer.' }),
    });
    const acceptedAt = Date.now();
    const { id } = (await posted.json()) as { id: string };
    if (posted.status !== 202) throw new Error(`the announcement was answered ${posted.status}`);
    const got = await Promise.all(arrivals);
    const received = got.reduce((n, a) => n + a.received, 0);
    const lastAt = Math.max(...got.map((a) => a.lastAt));
    const firstAt = Math.min(...got.filter((a) => a.firstAt > 0).map((a) => a.firstAt));
    const send = (await (await fetch(`${url}/v1/ops/notifications/${id}`, { headers: { 'x-api-key': env.STAMPEDE_OPERATOR_KEY! } })).json()) as {
      startedAt: string | null; sentAt: string | null; progress: { recipients: number | null; inApp: number };
    };
    const ms = lastAt - acceptedAt;
    const startedMs = send.startedAt ? Date.parse(send.startedAt) - acceptedAt : NaN;
    const sentMs = send.sentAt ? Date.parse(send.sentAt) - acceptedAt : NaN;
    const perKind = got.map((a, i) => `${groups[i]!.kind} ${a.received.toLocaleString('en')}/${ready[i]!.ready.toLocaleString('en')} by +${a.lastAt - acceptedAt} ms`).join(', ');
    const phase: Phase = {
      name: `8. live push: one announcement to ${connected.toLocaleString('en')} connected buyers (202 -> last client)`,
      requests: received, durationS: ms / 1000, rps: 0, p50: firstAt - acceptedAt, p99: ms, max: ms, statuses: { '202': 1 },
      note: `${ms} ms from the 202 to the last client (target <= ${LIVE_PUSH_TARGET_MS} ms: ${ms <= LIVE_PUSH_TARGET_MS ? 'met' : 'NOT met'}); ` +
        `first client +${firstAt - acceptedAt} ms; ${perKind}; the notifier started it +${startedMs} ms (scheduler tick, claim, relay, queue), ` +
        `finished its fan-out +${sentMs} ms (${send.progress.inApp.toLocaleString('en')} inbox rows); the rest is the push (Redis pub/sub, the api's forwarding, the clients' reading); ` +
        `${ready.reduce((n, r) => n + r.failed, 0)} clients failed to connect; p50 column = first client, p99/max = last`,
    };
    findings.phases.push(phase);
    log.info(phase, 'live push');
    process.stdout.write(`\nlive push: ${ms} ms from the operator's 202 to the last of ${received.toLocaleString('en')} clients (target <= ${LIVE_PUSH_TARGET_MS} ms)\n`);
    if (received < connected) findings.violations.push(`live push: ${connected - received} of ${connected} connected clients never received the announcement`);
    return phase;
  } finally {
    for (const c of clients) c.kill('SIGTERM');
    await roles.stop();
    await stopChild(api);
  }
}
