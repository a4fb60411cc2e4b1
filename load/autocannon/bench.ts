/**
 * `npm run bench`: boots Stampede (api, then relay + worker, as separate
 * processes), seeds buyers and sales, and measures in one run:
 *   1. baseline     a bare uWS hello-world answering 202 (the machine's ceiling)
 *   2. accept path  distinct buyers against sales that never sell out
 *   3. flash sale   100 items, 100,000+ distinct buyers; time to sell out
 *   4. sold-out     every request against the sold-out sale
 *   5. drain        orders/s from the last 202 until every accepted purchase is in Postgres
 *   6. bid war      every bidder on one hot auction (api restarted alone); the leader must be the highest bid;
 *                   bracketed by baselines of its own (6a, 6b)
 * After each it checks the invariants (the live ones in Redis after 2-4, Redis
 * against Postgres after 5), logs a broken one at once, and exits 1 at the end.
 * Results go to load/results/ as JSON and markdown, and are printed.
 *
 * The relay and worker are stopped during 1-4, so the api, Redis and the
 * load generator have the two cores; settlement is measured on its own in 5.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, hostname } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/log.js';
import { createPool } from '../../src/platform/db/pool.js';
import { migrate } from '../../src/platform/db/migrate.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { Sales } from '../../src/sales/sales.js';
import { saleKeys } from '../../src/sales/keys.js';
import { seed } from '../../src/dev/seed.js';
import { connectAmqp } from '../../src/platform/messaging/amqp.js';
import { allQueues, assertTopology } from '../../src/platform/messaging/topology.js';
import { createBuyerTokens } from '../../src/platform/auth/tokens.js';
import { projectRoot } from '../../src/platform/paths.js';
import { answers, aofRewrites, benchEnv, quietRedis, spawnRole as spawnChild, stopChild } from './processes.js';
import { auditLiveSale, auditSale } from '../../src/sales/audit.js';
import { runPaced } from './paced.js';
import { auditBidWar, runBidWar } from './bid-war.js';
import { resultOf, type LoadResult } from './results.js';
import { cpuPerRequest, cpuShares, cpuSnapshot, formatShares, type CpuSnapshot } from './cpu.js';
import { Auctions } from '../../src/auctions/auctions.js';

const scenarios = JSON.parse(readFileSync(join(projectRoot, 'load', 'scenarios.json'), 'utf8'));
const API_PORT = Number(process.env.BENCH_API_PORT ?? 8090);
const HELLO_PORT = Number(process.env.BENCH_HELLO_PORT ?? 8091);
const BUYERS = Number(process.env.BENCH_BUYERS ?? scenarios.flashSale.buyers);
const SCALE = Number(process.env.BENCH_DURATION_SCALE ?? 1);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? scenarios.connections);

const env = benchEnv(API_PORT);
const cfg = loadConfig(env);
const log = createLogger('info', 'bench');

interface Phase extends LoadResult {
  name: string;
  ratioToBaseline?: number;
  note?: string;
  /** CPU time per request (µs) of the processes that served and generated it; steadier than req/s on a shared host. */
  cpuUsPerRequest?: number;
}

const spawnRole = (args: string[], ready?: () => Promise<boolean>) => spawnChild(env, args, ready);

type RequestPicker = (i: number) => { path: string; token: string };

async function load(name: string, url: string, opts: { durationS?: number; amount?: number; rate?: number; pick?: RequestPicker; onStatus?: (status: number) => void }): Promise<Phase> {
  let i = 0;
  const instance = autocannon({
    url,
    connections: CONNECTIONS,
    pipelining: 1,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.durationS ?? 10 }),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"quantity":1}',
    requests: [
      {
        setupRequest: (req: any) => {
          if (!opts.pick) return req;
          const p = opts.pick(i++);
          return { ...req, path: p.path, headers: { ...req.headers, authorization: `Bearer ${p.token}` } };
        },
        onResponse: (status: number) => opts.onStatus?.(status),
      },
    ],
  } as autocannon.Options);
  return { name, ...resultOf(await instance) };
}

function markdown(phases: Phase[], extra: Record<string, unknown>, machine: Record<string, unknown>): string {
  const rows = phases.map((p) =>
    `| ${p.name} | ${p.rps.toLocaleString('en')} | ${p.p50} | ${p.p99} | ${p.max} | ${Object.entries(p.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')} | ${p.ratioToBaseline?.toFixed(2) ?? '—'} | ${p.note ?? ''} |`,
  );
  return [
    `Stampede bench, ${new Date().toISOString()} on ${machine.cpu} (${machine.cores} cores, ${machine.memGiB} GiB), Node ${process.version}, ${CONNECTIONS} connections`,
    '',
    '| phase | req/s | p50 ms | p99 ms | max ms | statuses | × baseline | note |',
    '|---|---:|---:|---:|---:|---|---:|---|',
    ...rows,
    '',
    ...Object.entries(extra).map(([k, v]) => `- ${k}: ${typeof v === 'number' ? v.toLocaleString('en') : String(v)}`),
    '',
  ].join('\n');
}

/** Each run starts from an empty database, so figures do not drift as tables grow. */
async function freshDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = u.pathname.slice(1);
  u.pathname = '/postgres';
  const admin = createPool(u.toString(), 1);
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
}

async function main(): Promise<void> {
  const machine = { host: hostname(), cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30) };
  if (!process.env.BENCH_DATABASE_URL) await freshDatabase(cfg.STAMPEDE_DATABASE_URL);
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 4);
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL);
  await redis.flushdb();
  const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'bench');
  const ch = await conn.createChannel();
  await assertTopology(ch, cfg.topology);
  for (const q of allQueues(cfg.topology)) await ch.purgeQueue(q.queue);

  // --- fixtures ---------------------------------------------------------------
  const t0 = Date.now();
  log.info({ buyers: BUYERS }, 'seeding');
  const seeded = await seed(pool, redis, {
    buyers: BUYERS, currency: 'EUR', funds: 1_000_000, jwtSecret: cfg.STAMPEDE_JWT_SECRET, tokenTtlSeconds: 6 * 3600,
    sale: { stock: scenarios.flashSale.stock, perBuyerLimit: scenarios.flashSale.perBuyerLimit },
  });
  const tokens = createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, 6 * 3600);
  const buyerTokens = seeded.buyerIds.map((id) => tokens.issue(id));
  const sales = new Sales(pool, redis);
  const acceptSales: string[] = [];
  for (let k = 0; k < scenarios.acceptPath.sales; k++) {
    const s = await sales.create(
      { name: `accept ${k}`, sku: 'BENCH-ACCEPT', unitPrice: 100, currency: 'EUR', stock: scenarios.acceptPath.stockPerSale,
        perBuyerLimit: scenarios.acceptPath.perBuyerLimit, startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString() },
      { role: 'operator', userId: null },
    );
    acceptSales.push(s.id);
  }
  const seedSeconds = (Date.now() - t0) / 1000;
  log.info({ seedSeconds }, 'seeded');
  // Freshly copied tables wake autovacuum, which would take a core from the
  // baseline and make every ratio look better than it is: vacuum now, then
  // let the machine settle.
  await pool.query('VACUUM ANALYZE');
  await quietRedis(redis);
  await new Promise((r) => setTimeout(r, 5_000));

  const phases: Phase[] = [];
  const violations: string[] = [];

  // --- 1. baseline --------------------------------------------------------------
  const measureBaseline = async (name: string) => {
    const hello = await spawnRole([join(projectRoot, 'dist', 'load', 'autocannon', 'hello-server.js'), String(HELLO_PORT)], answers(`http://127.0.0.1:${HELLO_PORT}/`));
    const cpu0 = cpuSnapshot();
    const b = await load(name, `http://127.0.0.1:${HELLO_PORT}/`, { durationS: scenarios.baseline.durationSeconds * SCALE });
    b.cpuUsPerRequest = cpuPerRequest(cpu0, cpuSnapshot(), [hello.pid!, process.pid], b.requests);
    b.note = `CPU per request: ${b.cpuUsPerRequest} µs (server + autocannon)`;
    await stopChild(hello);
    log.info(b, 'baseline');
    return b;
  };
  const baselineBefore = await measureBaseline('1. baseline: bare uWS 202');
  phases.push(baselineBefore);
  // Measured again after the api phases; ratios use the higher of the two, so noise never flatters them.
  let baseline = baselineBefore;

  // --- api ----------------------------------------------------------------------
  // BENCH_CPU_PROF=1 writes a V8 CPU profile of the api to load/results/profiles/.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', join(projectRoot, 'load', 'results', 'profiles')] : [];
  const api = await spawnRole([...prof, join(projectRoot, 'dist', 'src', 'cli.js'), 'api'], answers(`http://127.0.0.1:${API_PORT}/readyz`));
  const base = `http://127.0.0.1:${API_PORT}`;
  // After each api phase: every live invariant of every sale (Redis alone;
  // nothing is settled yet), and the units buyers hold grew by the phase's
  // 202s (plus at most one request per connection accepted as autocannon
  // stopped). A broken invariant is logged at once, and fails the bench at the end.
  let heldBefore = 0;
  const checkPhase = async (phase: Phase, unitsPer202: number, unitsAtMost?: number) => {
    let held = 0;
    for (const id of [...acceptSales, seeded.sale.id]) {
      const limit = id === seeded.sale.id ? scenarios.flashSale.perBuyerLimit : scenarios.acceptPath.perBuyerLimit;
      const a = await auditLiveSale(redis, id, limit);
      held += a.held;
      for (const v of a.violations) violations.push(`after ${phase.name}: ${id}: ${v}`);
    }
    const grew = held - heldBefore;
    const accepted = (phase.statuses['202'] ?? 0) * unitsPer202;
    if (grew < accepted || grew > accepted + CONNECTIONS * unitsPer202 || (unitsAtMost !== undefined && grew > unitsAtMost)) {
      violations.push(`after ${phase.name}: buyers hold ${grew} more units for ${accepted} accepted`);
    }
    heldBefore = held;
    const broken = violations.filter((v) => v.startsWith(`after ${phase.name}:`));
    if (broken.length > 0) log.error({ phase: phase.name, violations: broken }, 'INVARIANT VIOLATED');
  };
  try {
    // --- 2. accept path ---------------------------------------------------------
    const n = buyerTokens.length;
    const accept = await load('2. accept path', base, {
      durationS: scenarios.acceptPath.durationSeconds * SCALE,
      pick: (i) => ({ path: `/v1/sales/${acceptSales[Math.floor(i / n) % acceptSales.length]}/purchases`, token: buyerTokens[i % n]! }),
    });
    if (accept.requests >= n * acceptSales.length) accept.note = 'WARNING: buyers x sales exhausted; raise BENCH_BUYERS';
    phases.push(accept);
    log.info(accept, 'accept path');
    await checkPhase(accept, 1);

    // The same path paced below the ceiling, open loop (see paced.ts): latency
    // when the machine is not saturated. A closed loop of 100 connections at
    // saturation cannot show it: its mean latency is connections / throughput.
    const pacedRate = Number(process.env.BENCH_PACED_RATE ?? Math.round(accept.rps / 2));
    let offset = accept.requests + CONNECTIONS;
    const pacedRun = await runPaced({
      host: '127.0.0.1', port: API_PORT, connections: CONNECTIONS, rate: pacedRate, durationS: scenarios.acceptPath.durationSeconds * SCALE,
      request: (i) => {
        const k = i + offset;
        return `POST /v1/sales/${acceptSales[Math.floor(k / n) % acceptSales.length]}/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Authorization: Bearer ${buyerTokens[k % n]}\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"quantity":1}`;
      },
    });
    const paced: Phase = {
      name: `2b. accept path paced at ${pacedRate.toLocaleString('en')} req/s (open loop)`,
      ...pacedRun, rps: Math.round(pacedRun.requests / pacedRun.durationS),
    };
    offset += paced.requests;
    phases.push(paced);
    log.info(paced, 'accept path paced');
    await checkPhase(paced, 1);

    // --- 3. flash sale ------------------------------------------------------------
    let accepted = 0;
    let soldOutAt = 0;
    const flashStart = Date.now();
    const flash = await load('3. flash sale (100 items)', base, {
      amount: n,
      pick: (i) => ({ path: `/v1/sales/${seeded.sale.id}/purchases`, token: buyerTokens[i % n]! }),
      onStatus: (s) => {
        if (s === 202 && ++accepted === scenarios.flashSale.stock) soldOutAt = Date.now();
      },
    });
    flash.note = `${n.toLocaleString('en')} distinct buyers; sold out after ${soldOutAt ? soldOutAt - flashStart : '—'} ms`;
    phases.push(flash);
    log.info(flash, 'flash sale');
    await checkPhase(flash, 1, scenarios.flashSale.stock);

    // --- 4. sold-out storm ----------------------------------------------------------
    const storm = await load('4. sold-out storm', base, {
      durationS: scenarios.soldOutStorm.durationSeconds * SCALE,
      pick: (i) => ({ path: `/v1/sales/${seeded.sale.id}/purchases`, token: buyerTokens[i % n]! }),
    });
    phases.push(storm);
    log.info(storm, 'sold-out storm');
    await checkPhase(storm, 1, 0);

    const baselineAfter = await measureBaseline('1b. baseline again, after the api phases');
    phases.push(baselineAfter);
    baseline = baselineAfter.rps > baselineBefore.rps ? baselineAfter : baselineBefore;
    for (const p of phases) if (/^(2|3|4)\./.test(p.name)) p.ratioToBaseline = p.rps / baseline.rps;
    const flash202 = flash.statuses['202'] ?? 0;
    if (flash202 !== scenarios.flashSale.stock) violations.push(`flash sale: ${flash202} accepted for ${scenarios.flashSale.stock} units`);
    if ((storm.statuses['202'] ?? 0) !== 0) violations.push('sold-out storm accepted a purchase');
    for (const p of phases) if (Object.keys(p.statuses).some((k) => /^5/.test(k))) violations.push(`${p.name}: 5xx answers`);
  } finally {
    await stopChild(api);
  }

  // --- 5. settlement drain ----------------------------------------------------------
  const allSales = [...acceptSales, seeded.sale.id];
  const expected = phases.filter((p) => /^(2|2b|3|4)\./.test(p.name)).reduce((n, p) => n + (p.statuses['202'] ?? 0), 0);
  const drainStart = Date.now();
  const relay = await spawnRole([join(projectRoot, 'dist', 'src', 'cli.js'), 'relay']);
  const worker = await spawnRole([join(projectRoot, 'dist', 'src', 'cli.js'), 'worker']).catch(async (e) => {
    await stopChild(relay);
    throw e;
  });
  // Progress is read from Redis, where settlement lands right after each
  // Postgres commit: the sales' `reserved` counters fall to 0 when every
  // accepted purchase is settled. (Counting orders in Postgres every 100 ms
  // cost Postgres a share of the very CPU the drain is measured on.) The
  // orders are counted in Postgres once, at the end.
  const reservedNow = async () => {
    const values = await Promise.all(allSales.map((id) => redis.hget(saleKeys.sale(id), 'reserved')));
    // A missing sale would read as "nothing reserved" and end the drain at once.
    const missing = allSales.filter((_, i) => values[i] === null);
    if (missing.length > 0) throw new Error(`drain: sales ${missing.join(', ')} are not in Redis`);
    return values.reduce((n, v) => n + Number(v), 0);
  };
  const roleNames = new Map([[relay.pid!, 'relay'], [worker.pid!, 'worker'], [process.pid, 'bench']]);
  const cpuBefore = cpuSnapshot(roleNames);
  const cpuFrom = Date.now();
  const reservedAtStart = await reservedNow();
  let firstOrderAt = 0;
  for (;;) {
    const reserved = await reservedNow();
    if (reserved < reservedAtStart && firstOrderAt === 0) firstOrderAt = Date.now();
    if (reserved <= 0) break;
    if (Date.now() - drainStart > 600_000) {
      violations.push(`drain: ${reserved} purchases still reserved after 10 minutes`);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const { rows: counted } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE sale_id = ANY($1)', [allSales]);
  const settled = counted[0]!.n;
  const drainS = (Date.now() - drainStart) / 1000;
  const drainCpu = cpuShares(cpuBefore, cpuSnapshot(roleNames), (Date.now() - cpuFrom) / 1000);
  const steadyS = firstOrderAt ? (Date.now() - firstOrderAt) / 1000 : drainS;
  const drain: Phase = {
    name: '5. settlement drain', requests: settled, durationS: drainS, rps: Math.round(settled / drainS), p50: 0, p99: 0, max: 0,
    statuses: { orders: settled },
    note: `orders/s into Postgres from launching relay + worker on the backlog; ${Math.round(settled / Math.max(steadyS, 0.001)).toLocaleString('en')}/s from the first order (start-up excluded); CPU (share of one core): ${formatShares(drainCpu)}`,
  };
  phases.push(drain);
  log.info(drain, 'drain');
  // Let the Redis side of settlement finish before auditing.
  await new Promise((r) => setTimeout(r, 1000));
  await stopChild(worker);
  await stopChild(relay);

  // --- invariants -----------------------------------------------------------------
  let accepted202 = 0;
  for (const id of allSales) {
    const limit = id === seeded.sale.id ? scenarios.flashSale.perBuyerLimit : scenarios.acceptPath.perBuyerLimit;
    const a = await auditSale(pool, redis, id, limit);
    violations.push(...a.violations.map((v) => `${id}: ${v}`));
    if (a.live.reserved !== 0) violations.push(`${id}: ${a.live.reserved} still reserved after the drain`);
    if (a.orders !== a.confirmedOrders) violations.push(`${id}: ${a.orders - a.confirmedOrders} orders not confirmed`);
    accepted202 += a.confirmedOrders;
  }
  // A duration-bound run ends with up to one request per connection in flight:
  // accepted by the server, never counted by the load generator.
  const durationPhases = phases.filter((p) => /^(2|2b|4)\./.test(p.name)).length;
  const inFlightAtCutoff = accepted202 - expected;
  if (inFlightAtCutoff < 0 || inFlightAtCutoff > CONNECTIONS * durationPhases) {
    violations.push(`orders in Postgres ${accepted202} vs 202 answers ${expected}: more than the in-flight requests at cut-off can explain`);
  }

  // --- 6. bid war ---------------------------------------------------------------------
  // Every bidder on one hot auction, after the drain so its events do not
  // load the settlement measurement (the relay is stopped; they stay in the outbox).
  const auction = await new Auctions(pool, redis).create({
    title: 'bench: hot lot', currency: 'EUR', startPrice: scenarios.bidWar.startPrice, startsAt: new Date(Date.now() - 1000).toISOString(),
    endsAt: new Date(Date.now() + 3600_000).toISOString(), softCloseSeconds: 0, increment: { type: 'absolute', amount: scenarios.bidWar.increment },
  }, { role: 'operator', userId: null });
  // The drain's inserts wake autovacuum, which would take a core from the war: vacuum now, let the host settle.
  await pool.query('VACUUM ANALYZE');
  await quietRedis(redis);
  await new Promise((r) => setTimeout(r, 5_000));
  // The war is minutes after the api phases, past the drain and a vacuum: it
  // is bracketed by baselines of its own, and its ratio uses the higher of
  // the two (the rule the api phases follow), not baselines taken before the
  // host's load changed.
  const warBaselineBefore = await measureBaseline('6a. baseline before the bid war');
  phases.push(warBaselineBefore);
  const warApi = await spawnRole([...prof, join(projectRoot, 'dist', 'src', 'cli.js'), 'api'], answers(`http://127.0.0.1:${API_PORT}/readyz`));
  let war: Phase;
  const warNames = new Map([[warApi.pid!, 'api'], [process.pid, 'bench (autocannon)']]);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  const warCpuBefore = cpuSnapshot(warNames);
  const warAofBefore = await aofRewrites(redis);
  const warCpuFrom = Date.now();
  let warCpu: [string, number][] = [];
  try {
    war = {
      name: '6. bid war (one hot auction)',
      ...(await runBidWar(redis, {
        url: `http://127.0.0.1:${API_PORT}`, auctionId: auction.id, tokens: buyerTokens, connections: CONNECTIONS,
        durationS: scenarios.bidWar.durationSeconds * SCALE, startPrice: scenarios.bidWar.startPrice, increment: scenarios.bidWar.increment,
      })),
    };
    const warCpuAfter = cpuSnapshot(warNames);
    warCpu = cpuShares(warCpuBefore, warCpuAfter, (Date.now() - warCpuFrom) / 1000);
    war.cpuUsPerRequest = cpuPerRequest(warCpuBefore, warCpuAfter, [warApi.pid!, process.pid, redisPid], war.requests);
  } finally {
    await stopChild(warApi);
  }
  const warBaselineAfter = await measureBaseline('6b. baseline after the bid war');
  phases.push(warBaselineAfter);
  const warBaseline = Math.max(warBaselineBefore.rps, warBaselineAfter.rps);
  // By CPU too, which the host's neighbours disturb far less than req/s: the cheaper baseline, so noise never flatters it.
  const helloCpu = Math.min(warBaselineBefore.cpuUsPerRequest!, warBaselineAfter.cpuUsPerRequest!);
  const warAofRewrites = (await aofRewrites(redis)) - warAofBefore;
  const warAudit = await auditBidWar(redis, auction.id, war.statuses, CONNECTIONS);
  const warPhase: Phase = {
    ...war, ratioToBaseline: war.rps / warBaseline,
    note: `${warAudit.acceptedBids.toLocaleString('en')} bids accepted (each one increment above the last sent; overtaken ones get BID_TOO_LOW); leader = highest bid: ${warAudit.violations.length === 0 ? 'yes' : 'NO'}; CPU (share of one core): ${formatShares(warCpu)}; CPU per bid (api + Redis + autocannon) ${war.cpuUsPerRequest} µs against the baseline's ${helloCpu} µs per request: ${(helloCpu / war.cpuUsPerRequest!).toFixed(2)}× by CPU${warAofRewrites > 0 ? `; Redis rewrote its AOF ${warAofRewrites}× during the war (a forked child on a core)` : ''}`,
  };
  phases.push(warPhase);
  violations.push(...warAudit.violations);
  log.info(warPhase, 'bid war');

  const extra = {
    'buyers seeded': BUYERS,
    'seed time (s)': seedSeconds,
    '202 answers counted by autocannon': expected,
    'orders in Postgres (= sold in Redis, per sale)': accepted202,
    'accepted while autocannon stopped (in flight at cut-off)': accepted202 - expected,
    'settlement (orders/s, incl. process start)': drain.rps,
    'settlement (orders/s, from the first order)': Math.round(settled / Math.max(steadyS, 0.001)),
    'invariant violations': violations.length === 0 ? 0 : violations.join('; '),
  };
  const md = markdown(phases, extra, machine);
  const dir = join(projectRoot, 'load', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify({ at: new Date().toISOString(), machine, node: process.version, connections: CONNECTIONS, phases, extra, violations }, null, 2);
  writeFileSync(join(dir, `bench-${stamp}.json`), json);
  writeFileSync(join(dir, 'latest.json'), json);
  writeFileSync(join(dir, 'latest.md'), md);
  process.stdout.write('\n' + md + '\n');
  await conn.close();
  await Promise.all([pool.end(), redis.quit()]);
  if (violations.length > 0) {
    process.stderr.write(`\nINVARIANT VIOLATIONS:\n- ${violations.join('\n- ')}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
