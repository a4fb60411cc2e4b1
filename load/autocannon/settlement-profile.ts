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
 */
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createPool } from '../../src/db/pool.js';
import { createRedis } from '../../src/redis/client.js';
import { Sales } from '../../src/domain/sales.js';
import { reservePurchase } from '../../src/redis/sale-scripts.js';
import { saleKeys } from '../../src/redis/keys.js';
import { newPurchaseId } from '../../src/ids.js';
import { startRelay, startWorker } from '../../src/roles.js';
import { connectAmqp } from '../../src/messaging/amqp.js';
import { allQueues, assertTopology } from '../../src/messaging/topology.js';
const cfg = loadConfig({ ...process.env, STAMPEDE_DATABASE_URL: 'postgres://stampede:stampede@127.0.0.1:5432/stampede_bench', STAMPEDE_REDIS_URL: 'redis://127.0.0.1:6379/5', STAMPEDE_AMQP_PREFIX: 'stampede-prof', STAMPEDE_LOG_LEVEL: 'warn', STAMPEDE_WORKER_BATCH: process.env.WB ?? '500', STAMPEDE_WORKER_PREFETCH: process.env.WP ?? '200', STAMPEDE_WORKER_CONCURRENCY: process.env.WC ?? '4' });
const log = createLogger('warn', 'prof');
const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 4); const redis = createRedis(cfg.STAMPEDE_REDIS_URL); await redis.flushdb();
const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'p'); const ch = await conn.createChannel(); await assertTopology(ch, cfg.topology); for (const q of allQueues(cfg.topology)) await ch.purgeQueue(q.queue);
const N = Number(process.env.N ?? 40000);
const { rows } = await pool.query<{ id: string }>(`SELECT user_id AS id FROM wallets LIMIT $1`, [N]);
const sale = await new Sales(pool, redis).create({ name: 'p', sku: 'P', unitPrice: 1, currency: 'EUR', stock: 1_000_000, perBuyerLimit: 1, startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString() }, { role: 'operator', userId: null });
for (let i = 0; i < rows.length; i += 2000) await Promise.all(rows.slice(i, i + 2000).map((r) => reservePurchase(redis, { saleId: sale.id, buyerId: r.id, quantity: 1, purchaseId: newPurchaseId(sale.id), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000 })));
console.log(`START: ${rows.length} purchases in the outbox`); let t0 = Date.now();
// Settled = no longer reserved in Redis (settlement lands there right after
// each commit); polling count(*) in Postgres would tax the Postgres measured.
const ordersIn = async () => rows.length - Number((await redis.hget(saleKeys.sale(sale.id), 'reserved')) ?? 0);
let worker: Awaited<ReturnType<typeof startWorker>>;
if (process.env.BOTH === '1') {
  const relay = await startRelay(cfg, log);
  worker = await startWorker(cfg, log);
  while ((await ordersIn()) < rows.length) await new Promise((r) => setTimeout(r, 50));
  console.log('relay + worker:', Math.round(rows.length / ((Date.now() - t0) / 1000)), 'orders/s');
  await relay.stop();
} else {
  const relay = await startRelay(cfg, log);
  // The relay sends CloudEvents batches: count what it relayed, not the messages.
  for (;;) { if (relay.relay.relayed >= rows.length) break; await new Promise((r) => setTimeout(r, 50)); }
  console.log('relay alone:', Math.round(rows.length / ((Date.now() - t0) / 1000)), 'events/s');
  await relay.stop();
  t0 = Date.now();
  worker = await startWorker(cfg, log);
  while ((await ordersIn()) < rows.length) await new Promise((r) => setTimeout(r, 50));
  console.log('worker alone:', Math.round(rows.length / ((Date.now() - t0) / 1000)), 'orders/s');
}
const { rows: counted } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE sale_id = $1', [sale.id]);
if (counted[0]!.n !== rows.length) throw new Error(`${counted[0]!.n} orders in Postgres, expected ${rows.length}`);
await worker.stop(); await conn.close(); await pool.end(); await redis.quit();
