import { loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import { createPool } from '../platform/db/pool.js';
import { migrate } from '../platform/db/migrate.js';
import { createRedis } from '../platform/redis/client.js';
import { OrdersWorker } from '../sales/orders-worker.js';
import { AuctionsWorker } from '../auctions/auctions-worker.js';
import type { Role } from './role.js';

/**
 * The `worker` role: the orders worker and the auctions worker side by side,
 * sharing one Postgres pool, each on its own broker connection and queue
 * (both configured by the STAMPEDE_WORKER_* settings).
 */
export async function startWorker(
  cfg: Config = loadConfig(),
  log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'worker'),
): Promise<Role & { worker: OrdersWorker; auctions: AuctionsWorker }> {
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_DB_POOL_SIZE);
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'stampede-worker' });
  const common = {
    pool, amqpUrl: cfg.STAMPEDE_AMQP_URL, log, prefetch: cfg.STAMPEDE_WORKER_PREFETCH, batch: cfg.STAMPEDE_WORKER_BATCH,
    concurrency: cfg.STAMPEDE_WORKER_CONCURRENCY, topology: cfg.topology,
  };
  const worker = new OrdersWorker({ ...common, redis });
  const auctions = new AuctionsWorker(common);
  worker.start();
  auctions.start();
  return {
    worker,
    auctions,
    async stop() {
      await Promise.all([worker.stop(), auctions.stop()]);
      await Promise.allSettled([pool.end(), redis.quit()]);
      log.info('worker stopped');
    },
  };
}
