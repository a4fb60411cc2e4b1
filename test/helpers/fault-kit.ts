/**
 * Tools for the fault tests (test/faults/): a raw AMQP channel to inspect
 * and feed the real broker, worker child processes that can be SIGKILLed,
 * the broker's stop/start switch, and small Postgres/Redis probes.
 *
 * The fault tests run in their own namespace (AMQP prefix `stampede-fault`,
 * Redis database 3), so a concurrent run of the other test files (or of the
 * benchmark, on database 2) cannot purge or flush what a fault scenario is
 * waiting on. Two runs of the fault files at once still collide.
 * Nothing here is a mock: every call reaches the real services.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import type { Config } from '../../src/platform/config.js';
import type { Pool } from '../../src/platform/db/pool.js';
import type { Redis } from '../../src/platform/redis/client.js';
import { connectAmqp, type ConfirmChannel, type Connection } from '../../src/platform/messaging/amqp.js';
import { allQueues, deadLetterQueue, type Topology } from '../../src/platform/messaging/topology.js';
import { saleKeys } from '../../src/sales/keys.js';
import { projectRoot } from '../../src/platform/paths.js';
import { boot, sleep, TEST_ENV, waitFor, type HttpAnswer, type System } from './system.js';
import { auditSale } from './invariants.js';

/** Redis database 3 of the test server (1 is the test database, 2 the benchmark's), or STAMPEDE_FAULT_REDIS_URL. */
const faultRedisUrl = (): string => {
  if (process.env.STAMPEDE_FAULT_REDIS_URL) return process.env.STAMPEDE_FAULT_REDIS_URL;
  const u = new URL(TEST_ENV.STAMPEDE_REDIS_URL!);
  u.pathname = '/3';
  return u.toString();
};

/** Environment overrides every fault test passes to boot() (and to child processes). */
export const FAULT_ENV: NodeJS.ProcessEnv = {
  STAMPEDE_AMQP_PREFIX: process.env.STAMPEDE_FAULT_AMQP_PREFIX ?? 'stampede-fault',
  STAMPEDE_REDIS_URL: faultRedisUrl(),
};

export const faultEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...FAULT_ENV, ...extra });

// ------------------------------------------------------------------ AMQP

/** The CloudEvents a message carries: one, or a batch. */
export function eventsIn(m: { content: Buffer }): any[] {
  const v = JSON.parse(m.content.toString());
  return Array.isArray(v) ? v : [v];
}

/** One event of a message, as a message of its own. */
export interface SingleEvent {
  fields: { routingKey: string };
  content: Buffer;
  properties: import('amqplib').MessageProperties;
  event: any;
}

export interface Amqp {
  conn: Connection;
  ch: ConfirmChannel;
  /** Publishes and waits for the broker's confirm. */
  publish(exchange: string, routingKey: string, body: Buffer | string, props?: Record<string, unknown>): Promise<void>;
  sendToQueue(queue: string, body: Buffer | string, props?: Record<string, unknown>): Promise<void>;
  depth(queue: string): Promise<number>;
  /** Ready messages of every queue of the topology (main, retry tiers, dead-letter). */
  depths(): Promise<Record<string, number>>;
  /** Takes exactly n messages off a queue (unacknowledged: the caller acks them). */
  take(queue: string, n: number, timeoutMs?: number): Promise<import('amqplib').GetMessage[]>;
  /**
   * Takes messages off a queue until they carry n events (the relay sends
   * runs of events as CloudEvents batches). Returns the messages
   * (unacknowledged: the caller acks them) and every event as a message of
   * its own, to republish one by one.
   */
  takeEvents(queue: string, n: number, timeoutMs?: number): Promise<{ messages: import('amqplib').GetMessage[]; events: SingleEvent[] }>;
  /** Waits until the main and retry queues (or only `queues`) stay empty for `quietMs`; dead letters are parked, not busy. */
  quiet(quietMs?: number, timeoutMs?: number, queues?: string[]): Promise<void>;
}

/** A confirm channel of our own on the real broker; closed at teardown. */
export async function openAmqp(t: Test, cfg: Config): Promise<Amqp> {
  const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'fault test');
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  t.teardown(() => conn.close().catch(() => {}));
  const topology: Topology = cfg.topology;
  const confirmed = (send: (cb: (err: unknown) => void) => void) =>
    new Promise<void>((resolve, reject) => send((err) => (err ? reject(err) : resolve())));
  const amqp: Amqp = {
    conn,
    ch,
    publish: (exchange, routingKey, body, props = {}) =>
      confirmed((cb) => ch.publish(exchange, routingKey, Buffer.from(body), { persistent: true, mandatory: true, ...props }, cb)),
    sendToQueue: (queue, body, props = {}) => confirmed((cb) => ch.sendToQueue(queue, Buffer.from(body), { persistent: true, ...props }, cb)),
    depth: async (queue) => (await ch.checkQueue(queue)).messageCount,
    async depths() {
      const out: Record<string, number> = {};
      for (const q of allQueues(topology)) out[q.queue] = await amqp.depth(q.queue);
      return out;
    },
    async take(queue, n, timeoutMs = 15_000) {
      const got: import('amqplib').GetMessage[] = [];
      const deadline = Date.now() + timeoutMs;
      while (got.length < n) {
        const m = await ch.get(queue, { noAck: false });
        if (m) got.push(m);
        else if (Date.now() > deadline) throw new Error(`took ${got.length} of ${n} messages from ${queue}`);
        else await sleep(20);
      }
      return got;
    },
    async takeEvents(queue, n, timeoutMs = 15_000) {
      const messages: import('amqplib').GetMessage[] = [];
      const events: SingleEvent[] = [];
      const deadline = Date.now() + timeoutMs;
      while (events.length < n) {
        const m = await ch.get(queue, { noAck: false });
        if (m) {
          messages.push(m);
          for (const e of eventsIn(m)) {
            events.push({
              fields: { routingKey: m.fields.routingKey }, content: Buffer.from(JSON.stringify(e)), event: e,
              properties: { ...m.properties, messageId: e.id, contentType: 'application/cloudevents+json' },
            });
          }
        } else if (Date.now() > deadline) throw new Error(`took ${events.length} of ${n} events from ${queue}`);
        else await sleep(20);
      }
      return { messages, events };
    },
    async quiet(quietMs = 800, timeoutMs = 60_000, queues?: string[]) {
      const parked = new Set(allQueues(topology).filter((q) => q.kind === 'dead-letter').map((q) => q.queue));
      let since = 0;
      await waitFor('the queues to drain', async () => {
        const d = await amqp.depths();
        const busy = Object.entries(d).some(([q, n]) => (queues ? queues.includes(q) : !parked.has(q)) && n > 0);
        if (busy) since = 0;
        else since ||= Date.now();
        return since > 0 && Date.now() - since >= quietMs;
      }, timeoutMs, 50);
    },
  };
  return amqp;
}

/** Starts n in-process workers (each runs every worker of the role) and waits until `queue` has n consumers. */
export async function startWorkers(sys: System, amqp: Amqp, n: number, queue = sys.cfg.topology.orders.queue): Promise<() => Promise<void>> {
  const stops: (() => Promise<void>)[] = [];
  for (let i = 0; i < n; i++) stops.push(await sys.startWorker());
  for (let i = 0; i < 200 && (await amqp.ch.checkQueue(queue)).consumerCount < n; i++) await sleep(25);
  return async () => {
    for (const stop of stops) await stop();
  };
}

// ------------------------------------------------------- child processes

export interface Child {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** Runs `stampede <role>` as a real child process; killed (SIGKILL) at teardown if still alive. */
export function spawnRole(t: Test, role: string, env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', role], {
    cwd: projectRoot,
    env: { ...TEST_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-20_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return { proc, exited, output: () => out };
}

// ------------------------------------------------------------- services

const run = promisify(execFile);

/** `bash scripts/services.sh <cmd>`: each stop or kill waits until the service no longer answers, each start until it answers again. */
export async function services(cmd: 'stop-rabbitmq' | 'start-rabbitmq' | 'kill-redis' | 'start-redis' | 'stop-postgres' | 'start-postgres' | 'status'): Promise<string> {
  const { stdout, stderr } = await run('bash', ['scripts/services.sh', cmd], { cwd: projectRoot, timeout: 120_000 });
  return stdout + stderr;
}

/** A local 3-node RabbitMQ cluster, started (or reused) by `scripts/services.sh up --rabbitmq-cluster`. */
export interface RabbitCluster {
  /** STAMPEDE_AMQP_URL for it: every node's URL, comma-separated. */
  urls: string;
  ports: number[];
  /** `rabbitmqctl -q -n <the node on port> <args>`. */
  ctl(port: number, ...args: string[]): Promise<string>;
  /** kill -9 of the node on `port` (scripts/services.sh kill-rabbitmq-node); waits until its AMQP port is closed. */
  kill(port: number): Promise<void>;
  /** Starts whatever node is down again and waits until the cluster has all its nodes. */
  up(): Promise<void>;
}

export async function rabbitCluster(): Promise<RabbitCluster> {
  const up = async () => {
    const { stdout, stderr } = await run('bash', ['scripts/services.sh', 'up', '--rabbitmq-cluster'], { cwd: projectRoot, timeout: 180_000 });
    return stdout + stderr;
  };
  const out = await up();
  const urls = /STAMPEDE_AMQP_URL=(\S+)/.exec(out)?.[1];
  if (!urls) throw new Error(`services.sh printed no cluster URLs:\n${out}`);
  const ports = urls.split(',').map((u) => Number(new URL(u).port));
  const { stdout: host } = await run('hostname', ['-s']);
  return {
    urls,
    ports,
    async ctl(port, ...args) {
      const { stdout } = await run('rabbitmqctl', ['-q', '-n', `stampede-mq-${port}@${host.trim()}`, ...args], { timeout: 60_000 });
      return stdout;
    },
    async kill(port) {
      await run('bash', ['scripts/services.sh', 'kill-rabbitmq-node', String(port)], { cwd: projectRoot, timeout: 60_000 });
    },
    async up() {
      await up();
    },
  };
}

// ------------------------------------------------------------ the system

/** What most orders fault tests start from: the system with its relay, a broker connection, the orders queue and its .dlq. */
export interface OrdersBench {
  sys: System;
  amqp: Amqp;
  exchange: string;
  orders: System['cfg']['topology']['orders'];
  dlq: string;
}

export async function ordersBench(t: Test): Promise<OrdersBench> {
  const sys = await boot(t, { relay: true, env: faultEnv() });
  const amqp = await openAmqp(t, sys.cfg);
  const { exchange, orders } = sys.cfg.topology;
  return { sys, amqp, exchange, orders, dlq: deadLetterQueue(orders) };
}

/** A sale of `units` (one per buyer, at `unitPrice`) and as many buyers who each bought one: every purchase must be accepted. */
export async function soldToEach(t: Test, sys: System, units: number, o: { unitPrice?: number; funds?: { currency: string; amount: number } } = {}) {
  const sale = await sys.createSale({ stock: units, perBuyerLimit: 1, unitPrice: o.unitPrice ?? 1000 });
  const buyers = await sys.createBuyers(units, o.funds);
  t.same(statusCounts(await purchaseAll(sys, buyers, sale.id)), { 202: units }, 'every purchase accepted');
  return { sale, buyers };
}

/** Purchases one unit per buyer, at most `concurrency` requests in flight. */
export async function purchaseAll(sys: System, buyers: string[], saleId: string, concurrency = 250): Promise<HttpAnswer[]> {
  const answers: HttpAnswer[] = new Array(buyers.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, buyers.length) }, async () => {
      for (let i = next++; i < buyers.length; i = next++) answers[i] = await sys.purchase(buyers[i]!, saleId);
    }),
  );
  return answers;
}

export const statusCounts = (answers: HttpAnswer[]): Record<number, number> => {
  const out: Record<number, number> = {};
  for (const a of answers) out[a.status] = (out[a.status] ?? 0) + 1;
  return out;
};

export async function orderCount(pool: Pool, saleId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE sale_id = $1', [saleId]);
  return rows[0]!.n;
}

/** Balance of each of these buyers' wallets, grouped: [{ balance, n }], ascending. */
export async function balanceHistogram(pool: Pool, buyers: string[], currency = 'EUR'): Promise<{ balance: number; n: number }[]> {
  const { rows } = await pool.query<{ balance: number; n: number }>(
    `SELECT balance, count(*)::int AS n FROM wallets WHERE user_id = ANY($1) AND currency = $2 GROUP BY balance ORDER BY balance`,
    [buyers, currency],
  );
  return rows;
}

/** Ledger entries of the sale's orders, by kind: how many `purchase:` and `refund:` refs exist. */
export async function ledgerOfSale(pool: Pool, saleId: string): Promise<{ purchase: number; refund: number; sum: number }> {
  const { rows } = await pool.query<{ purchase: number; refund: number; sum: number }>(
    `SELECT count(*) FILTER (WHERE l.kind = 'purchase')::int AS purchase,
            count(*) FILTER (WHERE l.kind = 'refund')::int AS refund,
            coalesce(sum(l.amount), 0)::bigint AS sum
       FROM ledger_entries l JOIN orders o ON l.ref IN ('purchase:' || o.purchase_id, 'refund:' || o.purchase_id)
      WHERE o.sale_id = $1`,
    [saleId],
  );
  return rows[0]!;
}

/** Every ledger ref of the sale that occurs more than once (must be none: refs are unique). */
export async function duplicateOrders(pool: Pool, saleId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT purchase_id FROM orders WHERE sale_id = $1 GROUP BY purchase_id HAVING count(*) > 1) x`,
    [saleId],
  );
  return rows[0]!.n;
}

/** The sale's live state in Redis: counters, per-buyer bought, in-flight markers. */
export async function redisSnapshot(redis: Redis, saleId: string): Promise<{ sale: Record<string, string>; bought: Record<string, string>; inflight: Record<string, string> }> {
  const [sale, bought, inflight] = await Promise.all([
    redis.hgetall(saleKeys.sale(saleId)),
    redis.hgetall(saleKeys.bought(saleId)),
    redis.hgetall(saleKeys.inflight(saleId)),
  ]);
  return { sale, bought, inflight };
}

/**
 * Every one of the sale's `buyers` bought one unit at `price` exactly once,
 * whatever the fault: the invariant audit, one confirmed order and one debit
 * per buyer, no duplicate, stock all sold, each wallet at `funds - price`.
 */
export async function assertSoldOnceEach(t: Test, sys: System, saleId: string, buyers: string[], price: number, funds: number): Promise<void> {
  const n = buyers.length;
  const audit = await auditSale(sys.pool, sys.redis, saleId, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.orders, n, `exactly ${n} orders`);
  t.equal(audit.confirmedOrders, n);
  t.equal(audit.purchaseDebits, n, `exactly ${n} debits`);
  t.equal(await duplicateOrders(sys.pool, saleId), 0, 'no duplicate order');
  t.same(audit.live, { stock: n, available: 0, reserved: 0, sold: n }, `sold == ${n}`);
  t.same(await balanceHistogram(sys.pool, buyers), [{ balance: funds - price, n }], 'each buyer charged exactly once');
  t.same(await ledgerOfSale(sys.pool, saleId), { purchase: n, refund: 0, sum: -n * price });
}
