/**
 * Settlement, part by part: appends N accepted purchases straight to an outbox
 * (no HTTP), then times the relay alone (outbox -> queue) and the orders
 * worker alone (queue -> Postgres). Run after `npm run bench` (it reuses the
 * stampede_bench buyers):
 *
 *   node dist/load/autocannon/settlement-profile.js        # N=40000 WB=500 WP=200 WC=4
 *
 * WB, WP, WC override the worker's batch, prefetch and concurrency. BOTH=1
 * times relay and worker together instead (as the bench's drain does).
 * Each phase prints the CPU each process spent per order (relay and worker
 * share this process, "node") and Redis's costliest commands per order.
 */
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/log.js';
import { createPool } from '../../src/platform/db/pool.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { Sales } from '../../src/sales/sales.js';
import { reservePurchase } from '../../src/sales/scripts.js';
import { saleKeys } from '../../src/sales/keys.js';
import { newPurchaseId } from '../../src/platform/ids.js';
import { startRelay, startWorker } from '../../src/roles/index.js';
import { connectAmqp } from '../../src/platform/messaging/amqp.js';
import { allQueues, assertTopology } from '../../src/platform/messaging/topology.js';
import { cpuCostByProcess, cpuSnapshot, microsPerUnit, type CpuSnapshot } from './cpu.js';
import { commandCosts } from './redis-info.js';
const cfg = loadConfig({ ...process.env, STAMPEDE_DATABASE_URL: 'postgres://stampede:stampede@127.0.0.1:5432/stampede_bench', STAMPEDE_REDIS_URL: 'redis://127.0.0.1:6379/5', STAMPEDE_AMQP_PREFIX: 'stampede-prof', STAMPEDE_LOG_LEVEL: 'warn', STAMPEDE_WORKER_BATCH: process.env.WB ?? '500', STAMPEDE_WORKER_PREFETCH: process.env.WP ?? '200', STAMPEDE_WORKER_CONCURRENCY: process.env.WC ?? '4' });
const log = createLogger('warn', 'prof');
const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 4); const redis = createRedis(cfg.STAMPEDE_REDIS_URL); await redis.flushdb();
const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'p'); const ch = await conn.createChannel(); await assertTopology(ch, cfg.topology); for (const q of allQueues(cfg.topology)) await ch.purgeQueue(q.queue);
const N = Number(process.env.N ?? 40000);
const { rows } = await pool.query<{ id: string }>(`SELECT user_id AS id FROM wallets LIMIT $1`, [N]);
const sale = await new Sales(pool, redis).create({ name: 'p', sku: 'P', unitPrice: 1, currency: 'EUR', stock: 1_000_000, perBuyerLimit: 1, startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString() }, { role: 'operator', userId: null });
for (let i = 0; i < rows.length; i += 2000) await Promise.all(rows.slice(i, i + 2000).map((r) => reservePurchase(redis, { saleId: sale.id, buyerId: r.id, quantity: 1, purchaseId: newPurchaseId(sale.id), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000 })));
/** CPU per order since `from`, per process, and Redis's costliest commands per order. */
async function costs(from: CpuSnapshot, orders: number): Promise<string> {
  const procs = cpuCostByProcess(from, cpuSnapshot(), orders);
  const total = procs.reduce((a, p) => a + p.ticks, 0);
  const cmds = (await commandCosts(redis, orders, 6)).map((c) => `${c.command} ${c.usPerUnit.toFixed(1)} (${c.calls} calls)`);
  return `  CPU µs/order: ${procs.map((p) => `${p.name} ${p.usPerUnit}`).join(', ')}; total ${microsPerUnit(total, orders)}\n  Redis µs/order: ${cmds.join(', ')}`;
}
console.log(`START: ${rows.length} purchases in the outbox`); let t0 = Date.now();
await redis.config('RESETSTAT'); let cpu0 = cpuSnapshot();
// Settled = no longer reserved in Redis (settlement lands there right after
// each commit); polling count(*) in Postgres would tax the Postgres measured.
const ordersIn = async () => rows.length - Number((await redis.hget(saleKeys.sale(sale.id), 'reserved')) ?? 0);
let worker: Awaited<ReturnType<typeof startWorker>>;
if (process.env.BOTH === '1') {
  const relay = await startRelay(cfg, log);
  worker = await startWorker(cfg, log);
  while ((await ordersIn()) < rows.length) await new Promise((r) => setTimeout(r, 50));
  console.log('relay + worker:', Math.round(rows.length / ((Date.now() - t0) / 1000)), 'orders/s');
  console.log(await costs(cpu0, rows.length));
  await relay.stop();
} else {
  const relay = await startRelay(cfg, log);
  // The relay sends CloudEvents batches: count what it relayed, not the messages.
  for (;;) { if (relay.relay.relayed >= rows.length) break; await new Promise((r) => setTimeout(r, 50)); }
  console.log('relay alone:', Math.round(rows.length / ((Date.now() - t0) / 1000)), 'events/s');
  console.log(await costs(cpu0, rows.length));
  await relay.stop();
  await redis.config('RESETSTAT'); cpu0 = cpuSnapshot();
  t0 = Date.now();
  worker = await startWorker(cfg, log);
  while ((await ordersIn()) < rows.length) await new Promise((r) => setTimeout(r, 50));
  console.log('worker alone:', Math.round(rows.length / ((Date.now() - t0) / 1000)), 'orders/s');
  console.log(await costs(cpu0, rows.length));
}
const { rows: counted } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE sale_id = $1', [sale.id]);
if (counted[0]!.n !== rows.length) throw new Error(`${counted[0]!.n} orders in Postgres, expected ${rows.length}`);
await worker.stop(); await conn.close(); await pool.end(); await redis.quit();
