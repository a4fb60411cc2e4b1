/**
 * Boots real Stampede roles in-process against the real services: Redis
 * (database 1), Postgres (stampede_test) and RabbitMQ (the `stampede-test.*`
 * topology). Nothing here is a mock.
 */
import type { ReservationDeadline } from '../../src/sales/deadline.js';
import type { Test } from 'tap';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/log.js';
import { createPool, type Pool } from '../../src/platform/db/pool.js';
import { migrate } from '../../src/platform/db/migrate.js';
import { createRedis, masters, type Redis } from '../../src/platform/redis/client.js';
import { startApi, startRelay, startScheduler, startWorker, type ApiHandle } from '../../src/roles/index.js';
import type { Scheduler } from '../../src/auctions/scheduler.js';
import { createBuyerTokens } from '../../src/platform/auth/tokens.js';
import { createBuyers, creditWallet } from '../../src/buyers/buyers.js';
import { Sales, type NewSale, type SaleView } from '../../src/sales/sales.js';
import { connectAmqp } from '../../src/platform/messaging/amqp.js';
import { allQueues, assertTopology } from '../../src/platform/messaging/topology.js';
import { readLiveSale } from '../../src/sales/scripts.js';
import { checkEveryFetch, Contract, holdTo, release } from './openapi.js';
import { SIDE_BY_SIDE_ENV } from '../../src/roles/side-by-side.js';

// tap's own loaders ride along in NODE_OPTIONS; roles spawned by tests do not need them.
const { NODE_OPTIONS: _tapLoaders, ...inherited } = process.env;

export const TEST_ENV: NodeJS.ProcessEnv = {
  ...inherited,
  NODE_ENV: 'test',
  STAMPEDE_DATABASE_URL: process.env.STAMPEDE_TEST_DATABASE_URL ?? 'postgres://stampede:stampede@127.0.0.1:5432/stampede_test',
  STAMPEDE_REDIS_URL: process.env.STAMPEDE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/1',
  // Set (npm run test:cluster): the same tests against a Redis Cluster (its only database, 0; the URL is not used then).
  STAMPEDE_REDIS_CLUSTER_NODES: process.env.STAMPEDE_TEST_REDIS_CLUSTER_NODES ?? '',
  STAMPEDE_AMQP_PREFIX: process.env.STAMPEDE_TEST_AMQP_PREFIX ?? 'stampede-test',
  STAMPEDE_HTTP_HOST: '127.0.0.1',
  STAMPEDE_HTTP_PORT: '0',
  ...SIDE_BY_SIDE_ENV,
  STAMPEDE_LOG_LEVEL: process.env.STAMPEDE_TEST_LOG_LEVEL ?? 'silent',
  STAMPEDE_RETRY_DELAYS_MS: '200,500',
  // The bad-input tests send hundreds of bad credentials from 127.0.0.1 on purpose; auth-throttle.test.ts turns it on.
  STAMPEDE_AUTH_FAILURE_LIMIT: '0',
  STAMPEDE_RELAY_CLAIM_IDLE_MS: '1000',
  STAMPEDE_OPERATOR_KEY: 'test-operator-key',
  STAMPEDE_SHUTDOWN_GRACE_MS: '5000',
};

export const OPERATOR_KEY = 'test-operator-key';

export const testConfig = (overrides: NodeJS.ProcessEnv = {}): Config => loadConfig({ ...TEST_ENV, ...overrides });

/** A client of the test Redis, closed when the test `t` ends. */
export function testRedis(t: Test, name: string): Redis {
  const redis = createRedis(testConfig(), { name });
  t.teardown(() => redis.quit());
  return redis;
}

/** Empties the test Redis: its database, or every master of the test cluster. */
export async function flushRedis(redis: Redis): Promise<void> {
  for (const node of await masters(redis)) await node.flushdb();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

/** Empties every queue of the test topology (a previous file's leftovers). */
export async function purgeTestQueues(cfg: Config): Promise<void> {
  const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'test purge');
  const ch = await conn.createChannel();
  await assertTopology(ch, cfg.topology);
  for (const q of allQueues(cfg.topology)) await ch.purgeQueue(q.queue);
  await conn.close();
}

export interface HttpAnswer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function call<T = any>(url: string, init: RequestInit = {}): Promise<HttpAnswer<T>> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: any = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body };
}

// Every answer of an api `boot` started is checked against its OpenAPI document (test/helpers/openapi.ts).
checkEveryFetch();

/** The api's own OpenAPI document, fetched once: every later answer of this api is held to it. */
export async function holdToDocument(t: Test, url: string): Promise<Contract> {
  const res = await fetch(`${url}/openapi.json`);
  if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
  const contract = new Contract(await res.json());
  const { origin } = new URL(url);
  holdTo(origin, contract);
  t.teardown(() => release(origin));
  return contract;
}

export interface System {
  cfg: Config;
  pool: Pool;
  redis: Redis;
  api?: ApiHandle;
  url: string;
  token(buyerId: string): string;
  createSale(overrides?: Partial<NewSale>): Promise<SaleView>;
  createBuyers(n: number, funds?: { currency: string; amount: number }): Promise<string[]>;
  purchase(buyerId: string, saleId: string, body?: unknown, headers?: Record<string, string>): Promise<HttpAnswer>;
  operator(path: string, init?: RequestInit): Promise<HttpAnswer>;
  startRelay(): Promise<() => Promise<void>>;
  startWorker(): Promise<() => Promise<void>>;
  startScheduler(): Promise<{ scheduler: Scheduler; deadline: ReservationDeadline; stop: () => Promise<void> }>;
  /** Waits until no purchase of the sale is pending (every accepted one settled). */
  drained(saleId: string, timeoutMs?: number): Promise<void>;
}

export interface BootOptions {
  api?: boolean;
  relay?: boolean;
  worker?: boolean;
  scheduler?: boolean;
  env?: NodeJS.ProcessEnv;
}

export async function boot(t: Test, o: BootOptions = {}): Promise<System> {
  const cfg = testConfig(o.env);
  const log = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'test');
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  await purgeTestQueues(cfg);
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 5);
  const redis = createRedis(cfg, { name: 'test' });
  await flushRedis(redis);
  const stops: (() => Promise<void>)[] = [];
  t.teardown(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await pool.end();
    await redis.quit();
  });

  const api = o.api === false ? undefined : await startApi(cfg, createLogger(cfg.STAMPEDE_LOG_LEVEL, 'api'));
  if (api) stops.push(() => api.stop());
  if (api) await holdToDocument(t, api.url);
  const sys: System = {
    cfg,
    pool,
    redis,
    api,
    url: api?.url ?? '',
    token: (id) => createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, 3600).issue(id),
    async createSale(over = {}) {
      const now = Date.now();
      return new Sales(pool, redis).create(
        {
          name: 'Test drop', sku: 'TEST-1', unitPrice: 1000, currency: 'EUR', stock: 100, perBuyerLimit: 1,
          startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 3600_000).toISOString(), ...over,
        },
        { role: 'operator', userId: null },
      );
    },
    async createBuyers(n, funds = { currency: 'EUR', amount: 100_000 }) {
      const ids: string[] = [];
      for (let i = 0; i < n; i += 1000) {
        const batch = await createBuyers(pool, Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: `buyer ${i + k}` })));
        ids.push(...batch.map((b) => b.id));
      }
      if (funds.amount > 0) {
        // One bulk credit, through the same ledger the api uses.
        await pool.query(
          `WITH l AS (INSERT INTO ledger_entries (ref, user_id, currency, amount, kind)
                      SELECT 'credit:test:' || id, id, $2, $3, 'credit' FROM unnest($1::text[]) AS id RETURNING user_id)
           INSERT INTO wallets (user_id, currency, balance) SELECT user_id, $2, $3 FROM l`,
          [ids, funds.currency, funds.amount],
        );
      }
      return ids;
    },
    purchase(buyerId, saleId, body = { quantity: 1 }, headers = {}) {
      return call(`${sys.url}/v1/sales/${saleId}/purchases`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sys.token(buyerId)}`, 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
    operator(path, init = {}) {
      return call(`${sys.url}${path}`, {
        ...init,
        headers: { 'x-api-key': OPERATOR_KEY, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
      });
    },
    async startRelay() {
      const r = await startRelay(cfg, createLogger(cfg.STAMPEDE_LOG_LEVEL, 'relay'));
      const stop = () => r.stop();
      stops.push(stop);
      return stop;
    },
    async startWorker() {
      const w = await startWorker(cfg, createLogger(cfg.STAMPEDE_LOG_LEVEL, 'worker'));
      const stop = () => w.stop();
      stops.push(stop);
      return stop;
    },
    async startScheduler() {
      const s = await startScheduler(cfg, createLogger(cfg.STAMPEDE_LOG_LEVEL, 'scheduler'));
      let stopped: Promise<void> | undefined;
      const stop = () => (stopped ??= s.stop());
      stops.push(stop);
      return { scheduler: s.scheduler, deadline: s.deadline, stop };
    },
    async drained(saleId, timeoutMs = 60_000) {
      await waitFor(`sale ${saleId} to settle`, async () => {
        const live = await readLiveSale(redis, saleId);
        return live !== undefined && live.reserved === 0;
      }, timeoutMs);
    },
  };
  if (o.relay) await sys.startRelay();
  if (o.worker) await sys.startWorker();
  if (o.scheduler) await sys.startScheduler();
  return sys;
}

export { creditWallet };
