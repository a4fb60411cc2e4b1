/**
 * The `api` role: the HTTP and WebSocket server (uWebSockets.js), deciding
 * purchases and bids in Redis and answering as soon as Redis has decided.
 */
import type { us_listen_socket } from 'uWebSockets.js';
import { loadConfig, type Config } from '../config/index.js';
import { createLogger, type Logger } from '../log.js';
import { createPool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { findOrder } from '../db/orders.js';
import { createRedis } from '../redis/client.js';
import { STOCK_CHANNEL, USER_DELETED_CHANNEL } from '../redis/keys.js';
import { Auctions } from '../domain/auctions.js';
import { DeletedUsers } from '../domain/deletion.js';
import { ApiKeys } from '../auth/api-keys.js';
import { createBuyerTokens } from '../auth/tokens.js';
import { Sales } from '../domain/sales.js';
import { Purchases } from '../domain/purchases.js';
import { HttpServer } from '../http/server.js';
import { registerRoutes } from '../http/routes.js';
import { createOpsView } from '../http/ops.js';
import { LiveHub } from '../http/live.js';
import { assertNativeUws, uWS } from '../http/uws.js';
import { AmqpLink } from '../messaging/link.js';
import type { Role } from './role.js';

export interface ApiHandle extends Role {
  port: number;
  url: string;
  purchases: Purchases;
  live: LiveHub;
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms}ms`)), ms).unref())]);

export async function startApi(cfg: Config = loadConfig(), log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'api')): Promise<ApiHandle> {
  if (cfg.STAMPEDE_REQUIRE_NATIVE_UWS) assertNativeUws();
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_DB_POOL_SIZE);
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'stampede-api' });
  const subscriber = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'stampede-api-sub', autoPipelining: false });
  const link = new AmqpLink(cfg.STAMPEDE_AMQP_URL, `api ${process.pid}`, cfg.topology, log);
  link.start();

  const apiKeys = new ApiKeys(pool);
  if (cfg.STAMPEDE_OPERATOR_KEY !== '') await apiKeys.store(cfg.STAMPEDE_OPERATOR_KEY, 'operator', null, 'bootstrap (STAMPEDE_OPERATOR_KEY)');
  const sales = new Sales(pool, redis);
  const loaded = await sales.loadActive();
  const purchases = new Purchases(redis, sales, {
    rateMax: cfg.STAMPEDE_PURCHASE_RATE_MAX,
    rateWindowMs: cfg.STAMPEDE_PURCHASE_RATE_WINDOW_MS,
    idempotencyTtlMs: cfg.STAMPEDE_IDEMPOTENCY_TTL_MS,
    soldOutCacheMs: cfg.STAMPEDE_SOLD_OUT_CACHE_MS,
  }, (purchaseId) => findOrder(pool, purchaseId));
  const auctions = new Auctions(pool, redis, {
    rateMax: cfg.STAMPEDE_BID_RATE_MAX, rateWindowMs: cfg.STAMPEDE_BID_RATE_WINDOW_MS, idempotencyTtlMs: cfg.STAMPEDE_IDEMPOTENCY_TTL_MS,
  });
  const auctionsLoaded = await auctions.loadOpen();
  const deletedUsers = new DeletedUsers();
  subscriber.on('message', (channel: string, id: string) => {
    if (channel === STOCK_CHANNEL) purchases.soldOut.stockBack(id);
    else if (channel === USER_DELETED_CHANNEL) deletedUsers.add(id);
  });
  // Messages missed while disconnected are unknowable: forget the sold-out
  // cache, and read the deleted buyers again.
  subscriber.on('ready', () => {
    purchases.soldOut.clear();
    deletedUsers.load(redis).catch((err) => log.error({ err }, 'could not reload deleted buyers'));
  });
  await subscriber.subscribe(STOCK_CHANNEL, USER_DELETED_CHANNEL);
  await deletedUsers.load(redis);

  let draining = false;
  const readiness = async () => {
    const checks: Record<string, string> = {};
    const probe = async (name: string, fn: () => Promise<unknown>) => {
      try {
        await withTimeout(fn(), 1_000);
        checks[name] = 'ok';
      } catch (err) {
        checks[name] = (err as Error).message || 'failed';
      }
    };
    await Promise.all([
      probe('redis', () => redis.ping()),
      probe('postgres', () => pool.query('SELECT 1')),
      probe('rabbitmq', async () => {
        if (!link.connected) throw new Error('not connected');
      }),
    ]);
    if (draining) checks.shutdown = 'draining';
    return { ok: !draining && Object.values(checks).every((v) => v === 'ok'), checks };
  };

  const app = uWS.App();
  const http = new HttpServer(app, { log, maxBodyBytes: cfg.STAMPEDE_MAX_BODY_BYTES });
  registerRoutes(http, {
    pool, redis, tokens: createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, cfg.STAMPEDE_JWT_TTL_SECONDS), apiKeys, sales, purchases, auctions, deletedUsers,
    ops: createOpsView(redis, link, cfg.topology), maxQuantity: cfg.STAMPEDE_MAX_QUANTITY, readiness,
  });
  const live = new LiveHub({
    app, redis, redisUrl: cfg.STAMPEDE_REDIS_URL, log, tickMs: cfg.STAMPEDE_LIVE_TICK_MS, auctionSnapshot: (id) => auctions.liveSnapshot(id),
  });
  await live.start();
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(cfg.STAMPEDE_HTTP_HOST, cfg.STAMPEDE_HTTP_PORT, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${cfg.STAMPEDE_HTTP_HOST}:${cfg.STAMPEDE_HTTP_PORT}`))));
  });
  const port = uWS.us_socket_local_port(listenSocket as never);
  log.info({ port, salesLoaded: loaded, auctionsLoaded }, 'api listening');

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    purchases,
    live,
    async stop() {
      // Readiness turns 503 first, so a load balancer stops sending; then the socket closes.
      draining = true;
      await new Promise((r) => setTimeout(r, Math.min(500, cfg.STAMPEDE_SHUTDOWN_GRACE_MS)));
      uWS.us_listen_socket_close(listenSocket);
      await Promise.allSettled([live.stop(), link.stop(), pool.end(), redis.quit(), subscriber.quit()]);
      log.info('api stopped');
    },
  };
}
