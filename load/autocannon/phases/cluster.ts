/**
 * 11. Redis Cluster (issue 18): the same hot sales against one Redis node
 * and against the 3-master cluster (11a, 11b; STAMPEDE_REDIS_CLUSTER_NODES,
 * started by `scripts/services.sh up --redis-cluster`), and on the cluster
 * one hot sale in one slot against the same split with `shards: 3` across
 * the masters (11c, 11d). Each is a case: one api process
 * (relay and worker stopped, as in 2), purchases spread evenly over the
 * case's sales by distinct buyers (request i: sale i mod n, buyer i div n,
 * so every purchase is a buyer's first on its sale, as in the accept path),
 * closed loop for the accept path's duration. Per case: req/s, the 202s,
 * the CPU per request of the api and of each redis-server (from /proc), the
 * live invariants (invariants.ts) after it, and "one core per redis-server":
 * 1e6 / the busiest server's CPU µs per request, the req/s at which it
 * would fill a core of its own. For the cluster that is the projection to
 * three machines (docs/performance.md says what it assumes).
 *
 * On the cluster each sale is created until every master holds one (placed
 * by its `{sale:<id>}` hash tag's slot), or, for the sharded sale of 11d,
 * until its three shards are on three masters; the spare sales stay idle. The
 * cluster's masters are flushed before and after each cluster case: run it
 * only while nothing else uses the cluster. Its purchases are never
 * settled (the relay is stopped), like 10's.
 */
import type { Cluster } from 'ioredis';
import { loadConfig } from '../../../src/platform/config.js';
import { createRedis, masters, type Redis } from '../../../src/platform/redis/client.js';
import { saleKeys } from '../../../src/sales/keys.js';
import { shardKeysOf } from '../../../src/sales/shards.js';
import type { NewSale } from '../../../src/sales/sales.js';
import { runClosedLoop } from '../closed-loop.js';
import { cpuPerRequest, cpuSnapshot } from '../cpu.js';
import { acceptSale } from '../profile-kit.js';
import { startApi, stopChild } from '../processes.js';
import { quietRedis, redisServerPid } from '../redis-info.js';
import { scenarios } from '../scenarios.js';
import type { Phase } from '../results.js';
import { env, log, scaled, settings, type Bench, type Findings } from './context.js';
import { LiveSaleChecks } from './invariants.js';
import { letTheHostSettle } from './setup.js';

/** The cluster the cluster cases run against: BENCH_REDIS_CLUSTER_NODES, or the one services.sh starts. */
const CLUSTER_NODES = process.env.BENCH_REDIS_CLUSTER_NODES ?? '127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103';
/** Sales created at most while looking for one on every master (about 5.5 are needed for three, on average). */
const MOST_SALES_TO_PLACE = 60;

/** One case of the phase: where the api's Redis is and the hot sales it sells. */
export interface ClusterCase {
  /** Its row in the report. */
  name: string;
  /** The bench's one Redis node, or the cluster. */
  redis: 'node' | 'cluster';
  /** Hot sales the purchases are spread over, evenly. */
  sales: number;
  /** On the cluster: each sale on a master of its own (sales ≤ masters), so the load splits over them. */
  saleOnEachMaster: boolean;
  /** Sale-creation fields of the case's sales, over the accept path's (profile-kit.ts acceptSale): `shards` splits each. */
  saleOptions?: Partial<NewSale>;
  /** The case this one is compared with in the report (its label, e.g. '11a'). */
  against?: string;
  /** Seconds of load (before BENCH_DURATION_SCALE); the accept path's when absent. One sale has as many first purchases as buyers, so its cases run shorter. */
  durationS?: number;
}

/** The one-sale cases' seconds: at about 14,000 req/s here, 100,000 buyers (the seed) last about 7 s of first purchases on one sale. */
const ONE_SALE_SECONDS = 5;

/** Issue 18's first comparison: three hot sales on one node, then on the 3-master cluster. */
export const THREE_HOT_SALES: readonly ClusterCase[] = [
  { name: '11a. three hot sales, one Redis node', redis: 'node', sales: 3, saleOnEachMaster: false },
  { name: '11b. three hot sales, 3-master cluster', redis: 'cluster', sales: 3, saleOnEachMaster: true, against: '11a' },
];

/**
 * Issue 18's second comparison: one hot sale in one slot, then the same
 * sale split with `shards: 3` across the three masters (a shard on each,
 * src/sales/shards.ts); its "one core per redis-server" figure is the
 * projection for one drop.
 */
export const ONE_HOT_SALE_SHARDED: readonly ClusterCase[] = [
  { name: '11c. one hot sale, one shard, 3-master cluster', redis: 'cluster', sales: 1, saleOnEachMaster: false, durationS: ONE_SALE_SECONDS },
  {
    name: '11d. one hot sale, shards: 3, 3-master cluster', redis: 'cluster', sales: 1, saleOnEachMaster: true, saleOptions: { shards: 3 }, against: '11c',
    durationS: ONE_SALE_SECONDS,
  },
];

/** What one redis-server spent on a case. */
export interface RedisServerCost {
  /** host:port. */
  server: string;
  /** The case's sales whose keys it holds. */
  sales: string[];
  cpuUsPerRequest: number;
}

export interface ClusterCaseResult {
  case: ClusterCase;
  phase: Phase;
  apiCpuUsPerRequest: number;
  servers: RedisServerCost[];
  /** 1e6 / the busiest redis-server's CPU µs per request: the req/s at which it fills one core. */
  oneCorePerServerRps: number;
}

/** The phase: the three hot sales, on one node and on the cluster; then one hot sale, in one shard and in three. */
export async function runClusterPhase(bench: Bench, findings: Findings): Promise<ClusterCaseResult[]> {
  return runClusterCases(bench, findings, [...THREE_HOT_SALES, ...ONE_HOT_SALE_SHARDED]);
}

/** Runs `cases` in order, each a row of the report; the cluster client is made only if a case needs it. */
export async function runClusterCases(bench: Bench, findings: Findings, cases: readonly ClusterCase[]): Promise<ClusterCaseResult[]> {
  let cluster: Redis | undefined;
  try {
    const results: ClusterCaseResult[] = [];
    for (const c of cases) {
      if (c.redis === 'cluster') cluster ??= await connectCluster();
      results.push(await runCase(bench, findings, c, c.redis === 'cluster' ? cluster! : bench.redis));
    }
    return results;
  } finally {
    await cluster?.quit();
  }
}

const clusterEnv = { ...env, STAMPEDE_REDIS_CLUSTER_NODES: CLUSTER_NODES };

async function connectCluster(): Promise<Redis> {
  const cluster = createRedis(loadConfig(clusterEnv), { name: 'bench' });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`the Redis Cluster at ${CLUSTER_NODES} does not answer (bash scripts/services.sh up --redis-cluster)`)), 15_000).unref());
  try {
    await Promise.race([masters(cluster), timeout]);
  } catch (err) {
    cluster.disconnect();
    throw err;
  }
  return cluster;
}

const flushMasters = async (redis: Redis) => void await Promise.all((await masters(redis)).map((m) => m.flushdb()));

const serverOf = (node: Redis) => `${node.options.host}:${node.options.port}`;

async function runCase(bench: Bench, findings: Findings, c: ClusterCase, redis: Redis): Promise<ClusterCaseResult> {
  if (redis.isCluster) await flushMasters(redis);
  try {
    const { hot, all } = await createSales(bench, c, redis);
    const nodes = await masters(redis);
    const pids = await Promise.all(nodes.map(redisServerPid));
    if (redis.isCluster) for (const node of nodes) await quietRedis(node);
    await letTheHostSettle(bench); // the sales' inserts wake autovacuum; the bench's own Redis rewrites its AOF

    const apiEnv = redis.isCluster ? clusterEnv : { ...env, STAMPEDE_REDIS_CLUSTER_NODES: '' };
    const api = await startApi(apiEnv, settings.apiPort, settings.apiNodeFlags);
    let phase: Phase;
    let cpu: { api: number; servers: number[]; autocannon: number };
    try {
      const n = bench.buyerTokens.length;
      const cpu0 = cpuSnapshot();
      phase = await runClosedLoop(c.name, `http://127.0.0.1:${settings.apiPort}`, {
        connections: settings.connections, durationS: scaled(c.durationS ?? scenarios.acceptPath.durationSeconds),
        pick: (i) => ({ path: `/v1/sales/${hot[i % hot.length]!.id}/purchases`, token: bench.buyerTokens[Math.floor(i / hot.length) % n]! }),
      });
      const cpu1 = cpuSnapshot();
      const per = (pid: number) => cpuPerRequest(cpu0, cpu1, [pid], phase.requests);
      cpu = { api: per(api.pid!), servers: pids.map(per), autocannon: per(process.pid) };
      if (phase.requests >= n * hot.length) phase.note = 'WARNING: buyers x sales exhausted; raise BENCH_BUYERS';
    } finally {
      await stopChild(api);
    }

    const servers = nodes.map((node, k): RedisServerCost => ({
      server: serverOf(node), sales: hot.filter((s) => s.server.split(' ').includes(serverOf(node))).map((s) => s.id), cpuUsPerRequest: cpu.servers[k]!,
    }));
    const oneCorePerServerRps = Math.round(1e6 / Math.max(1, ...servers.map((s) => s.cpuUsPerRequest)));
    phase.cpuUsPerRequest = cpu.api + cpu.autocannon + cpu.servers.reduce((a, b) => a + b, 0);
    phase.note = [
      phase.note,
      `${hot.length} sales, ${(phase.statuses['202'] ?? 0).toLocaleString('en')} accepted`,
      `CPU µs per request: api ${cpu.api}, ${servers.map((s) => `redis-server ${s.server} ${s.cpuUsPerRequest} (${s.sales.length === 0 ? 'no sale' : s.sales.join(', ')})`).join(', ')}, autocannon ${cpu.autocannon}`,
      `one core per redis-server: ${oneCorePerServerRps.toLocaleString('en')} req/s`,
    ].filter(Boolean).join('; ');

    // Every sale created, the spare ones too: they must be untouched.
    await new LiveSaleChecks({ ...bench, redis, sales: all.map((id) => ({ id, perBuyerLimit: 1 })) }, findings).after(phase, 1);
    if (Object.keys(phase.statuses).some((k) => /^5/.test(k))) findings.violations.push(`${phase.name}: 5xx answers`);
    findings.phases.push(phase);
    log.info(phase, 'cluster case');
    return { case: c, phase, apiCpuUsPerRequest: cpu.api, servers, oneCorePerServerRps };
  } finally {
    if (redis.isCluster) await flushMasters(redis);
  }
}

/**
 * The case's hot sales, each with the server that holds it, and every sale
 * created. On the cluster with `saleOnEachMaster`, sales are created until
 * `c.sales` masters hold one each (a sale's master: its hash tag's slot,
 * CLUSTER KEYSLOT, in the client's slot map).
 */
async function createSales(bench: Bench, c: ClusterCase, redis: Redis): Promise<{ hot: { id: string; server: string }[]; all: string[] }> {
  const serverOfKey = async (key: string): Promise<string> => {
    if (!redis.isCluster) return serverOf(redis);
    const slot = Number(await redis.cluster('KEYSLOT', key));
    const server = (redis as unknown as Cluster).slots[slot]?.[0];
    if (!server) throw new Error(`the cluster client knows no master of slot ${slot}`);
    return server;
  };
  const shards = c.saleOptions?.shards ?? 1;
  const hot: { id: string; server: string }[] = [];
  const all: string[] = [];
  while (hot.length < c.sales) {
    if (all.length >= MOST_SALES_TO_PLACE) throw new Error(`${c.name}: ${c.sales} sales on distinct masters not found in ${MOST_SALES_TO_PLACE} sales`);
    const id = await acceptSale(bench.pool, redis, `${c.name} ${all.length}`, c.saleOptions);
    all.push(id);
    // A sharded sale is on the masters of its shards: with saleOnEachMaster, one shard on each.
    const servers = await Promise.all(shardKeysOf(id, shards).map((key) => serverOfKey(saleKeys.sale(key))));
    const server = [...new Set(servers)].join(' ');
    if (shards > 1) {
      if (!(redis.isCluster && c.saleOnEachMaster && new Set(servers).size < shards)) hot.push({ id, server });
    } else if (!(redis.isCluster && c.saleOnEachMaster && hot.some((s) => s.server === server))) hot.push({ id, server });
  }
  log.info({ case: c.name, sales: hot, created: all.length }, 'cluster case: sales placed');
  return { hot, all };
}

/** The report's lines for the phase: each case's CPU per redis-server and api, and the projection to one core (one machine) per redis-server. */
export function clusterExtra(results: ClusterCaseResult[]): Record<string, string> {
  const label = (r: ClusterCaseResult) => r.phase.name.split('.')[0];
  const out: Record<string, string> = {};
  for (const r of results) {
    out[`${label(r)}: CPU µs per request, each redis-server (its sales)`] = r.servers.map((s) => `${s.server} ${s.cpuUsPerRequest} (${s.sales.length})`).join(', ');
    out[`${label(r)}: api CPU µs per request`] = String(r.apiCpuUsPerRequest);
    const busiest = r.servers.reduce((a, b) => (b.cpuUsPerRequest > a.cpuUsPerRequest ? b : a));
    const apiCores = (r.oneCorePerServerRps * r.apiCpuUsPerRequest) / 1e6;
    out[r.case.redis === 'cluster'
      ? `${label(r)}: projected req/s on ${r.servers.length} machines (a core per master: 1e6 / the busiest master's CPU µs per request; api tier scaled out)`
      : `${label(r)}: one Redis node on a core of its own (1e6 / its CPU µs per request; api tier scaled out)`] =
      `${r.oneCorePerServerRps.toLocaleString('en')} (busiest ${busiest.server}, ${busiest.cpuUsPerRequest} µs; needs ${apiCores.toFixed(1)} cores of api at ${r.apiCpuUsPerRequest} µs per request)`;
  }
  for (const r of results) {
    const base = results.find((x) => label(x) === r.case.against);
    if (!base) continue;
    out[`${label(r)} against ${label(base)}`] = `${(r.phase.rps / base.phase.rps).toFixed(2)}× by req/s on this host, ${(r.oneCorePerServerRps / base.oneCorePerServerRps).toFixed(2)}× by one core per redis-server`;
  }
  return out;
}
