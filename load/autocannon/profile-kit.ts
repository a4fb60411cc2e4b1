/**
 * What the profile runners (bid-war-profile, accept-profile) share: the
 * bench's buyers as tokens, and a round of the hello-world baseline measured
 * by req/s and by CPU, so each round's ratio is against a baseline of the
 * same minute.
 */
import autocannon from 'autocannon';
import type { Pool } from 'pg';
import type { Redis } from 'ioredis';
import { createBuyerTokens } from '../../src/platform/auth/tokens.js';
import { Sales, type NewSale } from '../../src/sales/sales.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createPool } from '../../src/platform/db/pool.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { benchEnv, startHelloServer, stopChild } from './processes.js';
import { quietRedis, redisServerPid } from './redis-info.js';
import { cpuPerRequest, cpuSnapshot } from './cpu.js';
import { scenarios } from './scenarios.js';

export interface ProfileRun {
  /** ROUNDS (default 2), DURATION_S (default 8; not SECONDS: bash keeps a variable of that name), BENCH_CONNECTIONS. */
  rounds: number;
  seconds: number;
  connections: number;
  env: NodeJS.ProcessEnv;
  cfg: Config;
  pool: Pool;
  redis: Redis;
  redisPid: number;
}

/** The bench's environment for an api on `apiPort`, its database and Redis, and the run's settings. */
export async function profileRun(apiPort: number): Promise<ProfileRun> {
  const env = benchEnv(apiPort);
  const cfg = loadConfig(env);
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL);
  return {
    rounds: Number(process.env.ROUNDS ?? 2), seconds: Number(process.env.DURATION_S ?? 8),
    connections: Number(process.env.BENCH_CONNECTIONS ?? scenarios.connections),
    env, cfg, pool: createPool(cfg.STAMPEDE_DATABASE_URL, 2), redis, redisPid: await redisServerPid(redis),
  };
}

/** Tokens of up to `most` of the buyers `npm run bench` seeded. */
export async function benchBuyerTokens(pool: Pool, jwtSecret: string, most: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>('SELECT DISTINCT user_id AS id FROM wallets LIMIT $1', [most]);
  if (rows.length === 0) throw new Error('no buyers in the bench database: run `npm run bench` first');
  const tokens = createBuyerTokens(jwtSecret, 3600);
  return rows.map((r) => tokens.issue(r.id));
}

/** One hello-world round (after Redis's AOF is rewritten): its req/s and CPU per request (server + autocannon). */
export async function baselineRound(env: NodeJS.ProcessEnv, redis: Redis, o: { port: number; connections: number; seconds: number; body: string }): Promise<{ rps: number; cpuUs: number }> {
  const hello = await startHelloServer(env, o.port);
  await quietRedis(redis);
  const cpu0 = cpuSnapshot();
  // Built per request like the measured phase's (autocannon's setupRequest), as the bench's baseline is: the load generator does the same work in both.
  const base = await autocannon({
    url: `http://127.0.0.1:${o.port}/`, connections: o.connections, duration: o.seconds, method: 'POST',
    headers: { 'content-type': 'application/json' }, body: o.body,
    requests: [{ setupRequest: (req: autocannon.Request) => req, onResponse: () => {} }],
  } as autocannon.Options);
  const cpuUs = cpuPerRequest(cpu0, cpuSnapshot(), [hello.pid!, process.pid], base.requests.total);
  await stopChild(hello);
  return { rps: base.requests.total / base.duration, cpuUs };
}

/**
 * One open sale that never sells out (ten million units, one per buyer),
 * open for an hour; `options` override or add sale-creation fields (the
 * cluster phase's cases pass theirs).
 */
export async function acceptSale(pool: Pool, redis: Redis, name: string, options: Partial<NewSale> = {}): Promise<string> {
  return (await new Sales(pool, redis).create({
    name, sku: 'BENCH-ACCEPT', unitPrice: 100, currency: 'EUR', stock: 10_000_000, perBuyerLimit: 1,
    startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(), ...options,
  }, { role: 'operator', userId: null })).id;
}

/** Enough open sales that never sell out (one unit per buyer) for `purchases` purchases by `buyers` buyers, each a buyer's first on its sale. */
export async function acceptSales(pool: Pool, redis: Redis, name: string, purchases: number, buyers: number): Promise<string[]> {
  const ids: string[] = [];
  for (let k = 0; k < Math.ceil(purchases / buyers); k++) ids.push(await acceptSale(pool, redis, `${name}.${k}`));
  return ids;
}
