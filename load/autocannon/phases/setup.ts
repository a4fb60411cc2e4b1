/**
 * Before anything is measured: an empty database, a flushed Redis and empty
 * queues; then the buyers and sales the phases use, and a quiet host.
 */
import { createPool } from '../../../src/platform/db/pool.js';
import { migrate } from '../../../src/platform/db/migrate.js';
import { createRedis } from '../../../src/platform/redis/client.js';
import { connectAmqp } from '../../../src/platform/messaging/amqp.js';
import { allQueues, assertTopology } from '../../../src/platform/messaging/topology.js';
import { createBuyerTokens } from '../../../src/platform/auth/tokens.js';
import { Sales } from '../../../src/sales/sales.js';
import { seed } from '../../../src/dev/seed.js';
import { quietRedis } from '../redis-info.js';
import { scenarios } from '../scenarios.js';
import { cfg, log, settings, type Bench } from './context.js';

const TOKEN_TTL_SECONDS = 6 * 3600;

export async function setUp(): Promise<Bench> {
  // BENCH_DATABASE_URL names a database of the caller's: it is migrated, never dropped.
  if (!process.env.BENCH_DATABASE_URL) await freshDatabase(cfg.STAMPEDE_DATABASE_URL);
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 4);
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL);
  await redis.flushdb();
  const amqp = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'bench');
  const channel = await amqp.createChannel();
  await assertTopology(channel, cfg.topology);
  for (const q of allQueues(cfg.topology)) await channel.purgeQueue(q.queue);

  const seedStart = Date.now();
  log.info({ buyers: settings.buyers }, 'seeding');
  const seeded = await seed(pool, redis, {
    buyers: settings.buyers, currency: 'EUR', funds: 1_000_000, jwtSecret: cfg.STAMPEDE_JWT_SECRET, tokenTtlSeconds: TOKEN_TTL_SECONDS,
    sale: { stock: scenarios.flashSale.stock, perBuyerLimit: scenarios.flashSale.perBuyerLimit },
  });
  const tokens = createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, TOKEN_TTL_SECONDS);
  const buyerTokens = seeded.buyerIds.map((id) => tokens.issue(id));
  const acceptSaleIds = await createAcceptSales(new Sales(pool, redis));
  const seedSeconds = (Date.now() - seedStart) / 1000;
  log.info({ seedSeconds }, 'seeded');

  const flashSaleId = seeded.sale.id;
  const sales = [
    ...acceptSaleIds.map((id) => ({ id, perBuyerLimit: scenarios.acceptPath.perBuyerLimit })),
    { id: flashSaleId, perBuyerLimit: scenarios.flashSale.perBuyerLimit },
  ];
  const bench: Bench = { pool, redis, amqp, buyerTokens, acceptSaleIds, flashSaleId, sales, seedSeconds };
  // Freshly copied tables wake autovacuum, which would take a core from the
  // baseline and make every ratio look better than it is.
  await letTheHostSettle(bench);
  return bench;
}

/**
 * Moves the host's own catch-up work out of the next measured window:
 * vacuums Postgres (autovacuum wakes after bulk inserts and takes a core),
 * has Redis rewrite its append-only file (see quietRedis), then lets the
 * machine settle.
 */
export async function letTheHostSettle(bench: Bench): Promise<void> {
  await bench.pool.query('VACUUM ANALYZE');
  await quietRedis(bench.redis);
  await new Promise((r) => setTimeout(r, 5_000));
}

export async function tearDown(bench: Bench): Promise<void> {
  await bench.amqp.close();
  await Promise.all([bench.pool.end(), bench.redis.quit()]);
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

/** The accept path's sales, open now for an hour, with stock to spare. */
async function createAcceptSales(sales: Sales): Promise<string[]> {
  const ids: string[] = [];
  for (let k = 0; k < scenarios.acceptPath.sales; k++) {
    const s = await sales.create(
      { name: `accept ${k}`, sku: 'BENCH-ACCEPT', unitPrice: 100, currency: 'EUR', stock: scenarios.acceptPath.stockPerSale,
        perBuyerLimit: scenarios.acceptPath.perBuyerLimit, startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString() },
      { role: 'operator', userId: null },
    );
    ids.push(s.id);
  }
  return ids;
}
