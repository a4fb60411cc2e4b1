/**
 * The `api` role: the HTTP and WebSocket server (uWebSockets.js), deciding
 * purchases and bids in Redis and answering as soon as Redis has decided.
 */
import type { us_listen_socket } from 'uWebSockets.js';
import { DEV_OPERATOR_KEY, loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import { createPool } from '../platform/db/pool.js';
import { migrate } from '../platform/db/migrate.js';
import { findOrder } from '../sales/repository.js';
import { createRedis } from '../platform/redis/client.js';
import { STOCK_CHANNEL } from '../sales/keys.js';
import { USER_DELETED_CHANNEL } from '../buyers/keys.js';
import { Auctions } from '../auctions/auctions.js';
import { Bids } from '../auctions/bids.js';
import { DeletedUsers } from '../buyers/deletion.js';
import { KnownBuyers } from '../buyers/known-buyers.js';
import { API_KEY_REVOKED_CHANNEL, ApiKeys, announceRevocation } from '../platform/auth/api-keys.js';
import { createBuyerTokens } from '../platform/auth/tokens.js';
import { Sales } from '../sales/sales.js';
import { Purchases } from '../sales/purchases.js';
import { HttpServer, type RegisteredRoute } from '../platform/http/server.js';
import { AuthThrottle } from '../platform/http/auth-throttle.js';
import { createRouteKit } from '../platform/http/route-kit.js';
import { createOpsView } from '../ops/queues.js';
import { registerOpsRoutes, registerReconciliationRoutes, registerSellerKeyRoutes } from '../ops/routes.js';
import { Reconciliation } from '../ops/reconciliation.js';
import { DeadLetters } from '../ops/dead-letters.js';
import { OperatorKeys } from '../ops/keys.js';
import { registerBuyerRoutes } from '../buyers/routes.js';
import { registerSaleRoutes } from '../sales/routes.js';
import { registerAuctionRoutes } from '../auctions/routes.js';
import { registerNotificationRoutes } from '../notifications/routes.js';
import { Inbox, retentionOf } from '../notifications/inbox.js';
import { Preferences } from '../notifications/preferences.js';
import { Interests } from '../notifications/interests.js';
import { unsubscribeLinksOf } from '../notifications/unsubscribe.js';
import { NotificationFeed } from '../notifications/feed.js';
import { ScheduledSends, sendSettingsOf } from '../notifications/sends.js';
import { registerAnnouncementRoutes } from '../notifications/announcement-routes.js';
import { NotificationStreams } from '../notifications/stream.js';
import { EventStreams } from '../platform/http/sse.js';
import { LiveHub } from '../live/hub.js';
import { assertNativeUws, uWS } from '../platform/http/uws.js';
import { AmqpLink } from '../platform/messaging/link.js';
import type { Role } from './role.js';
import { registryFor } from './metrics.js';
import { exposition, gaugesFrom, serveMetrics, sharedRead, type LabelValues } from '../platform/metrics/registry.js';
import { requestCounters } from '../platform/metrics/http.js';
import { scriptMetrics } from '../platform/metrics/scripts.js';
import { observeScripts } from '../platform/redis/functions.js';
import { registerOpsMetrics, registerReconciliationMetrics } from '../ops/metrics.js';
import { registerLiveMetrics } from '../live/metrics.js';
import { OutcomeTally } from '../platform/redis/tally.js';
import { saleKeys } from '../sales/keys.js';
import { auctionKeys } from '../auctions/keys.js';
import { OpsBoard } from '../ops/board.js';
import { registerBoardRoutes } from '../ops/board-routes.js';
import { brokerRates, managementUrlOf } from '../ops/broker-rates.js';
import { Heartbeat } from '../ops/heartbeats.js';
import { registerStorefront } from '../dev/storefront.js';
import { LIVE_DOC } from '../live/api-doc.js';
import { registerApiReference } from '../platform/http/api-reference.js';
import type { RouteDoc } from '../platform/http/doc.js';
import { registerWebhookRoutes } from '../webhooks/routes.js';
import { PostgresOutboxRelay, writeToOutbox } from '../platform/messaging/pg-outbox.js';
import { WebhookEndpoints } from '../webhooks/endpoints.js';
import { endpointSettingsOf } from '../webhooks/settings.js';

export interface ApiHandle extends Role {
  port: number;
  /** Every route registered (answered or described), as the OpenAPI document is built from them. */
  routes: readonly RegisteredRoute[];
  url: string;
  purchases: Purchases;
  live: LiveHub;
  feed: NotificationFeed;
  eventStreams: EventStreams;
}

/** Decision counts outlive their last flush by a day: long enough for any board to read, short enough to leave nothing behind. */
const TALLY_TTL_SECONDS = 86_400;

const HEALTH_DOC: RouteDoc = {
  summary: 'Alive', tags: ['health'], refusals: [],
  responses: { 200: { description: 'The process answers.', schema: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'], additionalProperties: false } } },
};
/** What the api can be without, for a while: it still accepts purchases and bids (the outboxes hold them). */
const DEGRADING = ['postgres', 'rabbitmq'] as const;

const READINESS = {
  type: 'object',
  properties: {
    status: { enum: ['ready', 'not ready'], description: '`ready` while Redis answers and the api is not shutting down.' },
    degraded: { type: 'array', items: { enum: [...DEGRADING] }, description: 'Backing services down that the api accepts purchases and bids without: settlement and reads that need them wait.' },
    checks: { type: 'object', additionalProperties: { type: 'string' }, description: 'Per dependency (redis, postgres, rabbitmq; shutdown while draining): `ok` or what failed.' },
  },
  required: ['status', 'degraded', 'checks'],
  additionalProperties: false,
};
const READY_DOC: RouteDoc = {
  summary: 'Ready: Redis answers (Postgres and RabbitMQ down only degrade it)', tags: ['health'], refusals: [],
  responses: { 200: { description: 'Ready.', schema: READINESS }, 503: { description: 'Not ready: Redis is down, or the api is shutting down.', schema: READINESS } },
};
const METRICS_DOC: RouteDoc = {
  summary: 'Prometheus metrics', description: 'The Prometheus text format. Keep it off the public network.', tags: ['health'],
  responses: { 200: { description: 'The metrics.', contentType: 'text/plain', schema: { type: 'string' } } },
};

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms}ms`)), ms).unref())]);

export async function startApi(cfg: Config = loadConfig(), log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'api')): Promise<ApiHandle> {
  if (cfg.STAMPEDE_REQUIRE_NATIVE_UWS) assertNativeUws();
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_DB_POOL_SIZE);
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const redis = createRedis(cfg, { name: 'stampede-api' });
  const registry = registryFor(cfg, 'api');
  if (registry) observeScripts(redis, scriptMetrics(registry));
  const subscriber = createRedis(cfg, { name: 'stampede-api-sub', autoPipelining: false });
  const link = new AmqpLink(cfg.STAMPEDE_AMQP_URL, `api ${process.pid}`, cfg.topology, log);
  link.start();

  const apiKeys = new ApiKeys(pool, cfg.STAMPEDE_API_KEY_CACHE_MS);
  if (cfg.STAMPEDE_OPERATOR_KEY !== '') await apiKeys.store(cfg.STAMPEDE_OPERATOR_KEY, 'operator', null, 'bootstrap (STAMPEDE_OPERATOR_KEY)');
  if (cfg.NODE_ENV === 'production') {
    // The configuration refuses the development key; one an earlier, non-production start stored must not work either.
    const revoked = await apiKeys.revokeKnown(DEV_OPERATOR_KEY);
    if (revoked) {
      await announceRevocation(redis, revoked);
      log.warn('revoked the development operator key an earlier start had stored');
    }
  }
  const sends = new ScheduledSends(pool, redis, sendSettingsOf(cfg));
  const tallyOf = (keyOf: (id: string) => string) => new OutcomeTally(redis, { keyOf, flushMs: cfg.STAMPEDE_TALLY_FLUSH_MS, ttlSeconds: TALLY_TTL_SECONDS, log });
  const saleTally = tallyOf(saleKeys.outcomes);
  const bidTally = tallyOf(auctionKeys.outcomes);
  // A sale change's events are written to the Postgres outbox in its transaction and relayed from there with
  // publisher confirms: a broker that is away delays them, never loses one (src/platform/messaging/pg-outbox.ts).
  const eventOutbox = new PostgresOutboxRelay({
    pool, channel: () => link.confirmChannel(), exchange: cfg.topology.exchange, log, pollMs: cfg.STAMPEDE_EVENT_OUTBOX_POLL_MS,
  });
  eventOutbox.start();
  const announceSale = { record: writeToOutbox, committed: () => eventOutbox.kick() };
  const sales = new Sales(pool, redis, sends, announceSale);
  const loaded = await sales.loadActive();
  const purchases = new Purchases(redis, sales, {
    rateMax: cfg.STAMPEDE_PURCHASE_RATE_MAX,
    rateWindowMs: cfg.STAMPEDE_PURCHASE_RATE_WINDOW_MS,
    idempotencyTtlMs: cfg.STAMPEDE_IDEMPOTENCY_TTL_MS,
    soldOutCacheMs: cfg.STAMPEDE_SOLD_OUT_CACHE_MS,
  }, (purchaseId) => findOrder(pool, purchaseId), saleTally);
  const auctions = new Auctions(pool, redis);
  const bids = new Bids(redis, auctions, {
    rateMax: cfg.STAMPEDE_BID_RATE_MAX, rateWindowMs: cfg.STAMPEDE_BID_RATE_WINDOW_MS, idempotencyTtlMs: cfg.STAMPEDE_IDEMPOTENCY_TTL_MS,
  }, bidTally);
  const auctionsLoaded = await auctions.loadOpen();
  const deletedUsers = new DeletedUsers();
  const knownBuyers = new KnownBuyers(pool, log, cfg.STAMPEDE_KNOWN_BUYERS_MAX);
  const buyersLoaded = await knownBuyers.preload();
  subscriber.on('message', (channel: string, id: string) => {
    if (channel === STOCK_CHANNEL) purchases.soldOut.stockBack(id);
    else if (channel === USER_DELETED_CHANNEL) deletedUsers.add(id);
    else if (channel === API_KEY_REVOKED_CHANNEL) apiKeys.evict(id);
  });
  // Messages missed while disconnected are unknowable: forget the sold-out
  // cache and the API keys looked up, and read the deleted buyers again.
  subscriber.on('ready', () => {
    purchases.soldOut.clear();
    apiKeys.forgetCached();
    deletedUsers.load(redis).catch((err) => log.error({ err }, 'could not reload deleted buyers'));
  });
  await subscriber.subscribe(STOCK_CHANNEL, USER_DELETED_CHANNEL, API_KEY_REVOKED_CHANNEL);
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
    // The api decides purchases and bids in Redis alone: with Postgres or the broker down it still accepts them
    // (the outbox holds them), so those only degrade it. A load balancer must not pull every node for them.
    const degraded = DEGRADING.filter((name) => checks[name] !== 'ok');
    return { ok: !draining && checks.redis === 'ok', degraded, checks };
  };
  const readOnce = sharedRead(readiness);

  const app = uWS.App();
  const http = new HttpServer(app, {
    log, maxBodyBytes: cfg.STAMPEDE_MAX_BODY_BYTES, requests: registry && requestCounters(registry),
    authThrottle: new AuthThrottle({ limit: cfg.STAMPEDE_AUTH_FAILURE_LIMIT, windowMs: cfg.STAMPEDE_AUTH_FAILURE_WINDOW_MS }),
  });
  const tokens = createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, cfg.STAMPEDE_JWT_TTL_SECONDS);
  const kit = createRouteKit({ pool, apiKeys, tokens, isRefusedBuyer: (id) => deletedUsers.has(id), knownBuyers });
  http.route('get', '/healthz', () => ({ status: 200, body: { status: 'ok' } }), { doc: HEALTH_DOC });
  http.route('get', '/readyz', async () => {
    const r = await readOnce();
    return { status: r.ok ? 200 : 503, body: { status: r.ok ? 'ready' : 'not ready', degraded: r.degraded, checks: r.checks } };
  }, { doc: READY_DOC });
  registerBuyerRoutes(http, kit, { pool, redis, apiKeys, bids, deletedUsers, knownBuyers });
  registerSaleRoutes(http, kit, {
    sales, purchases, maxQuantity: cfg.STAMPEDE_MAX_QUANTITY, maxBundleItems: cfg.STAMPEDE_MAX_BUNDLE_ITEMS,
    maxEligibleBuyers: cfg.STAMPEDE_MAX_ELIGIBLE_BUYERS, maxBodyBytes: cfg.STAMPEDE_MAX_BODY_BYTES,
  });
  registerAuctionRoutes(http, kit, auctions, bids);
  const inbox = new Inbox(pool, retentionOf(cfg));
  const feed = new NotificationFeed(cfg, log);
  const eventStreams = new EventStreams(http, { log, keepAliveMs: cfg.STAMPEDE_SSE_KEEPALIVE_MS, maxStreams: cfg.STAMPEDE_SSE_MAX_STREAMS });
  registerNotificationRoutes(http, kit, {
    inbox, preferences: new Preferences(pool), unsubscribeLinks: unsubscribeLinksOf(cfg), eventStreams, streams: new NotificationStreams(feed, inbox, log),
    interests: new Interests(pool, cfg.STAMPEDE_MAX_INTERESTS),
  });
  const ops = createOpsView(redis, pool, link, cfg.topology);
  const deadLetters = new DeadLetters(pool, cfg.topology, () => link.confirmChannel());
  const operatorKeys = new OperatorKeys(pool, redis, apiKeys);
  registerOpsRoutes(http, kit, ops, deadLetters, operatorKeys);
  registerSellerKeyRoutes(http, kit, operatorKeys);
  const reconciliation = new Reconciliation({ pool, redisTarget: cfg, log, stuckAfterMs: cfg.STAMPEDE_RECONCILE_STUCK_AFTER_MS });
  registerReconciliationRoutes(http, kit, reconciliation);
  registerAnnouncementRoutes(http, kit, sends);
  registerWebhookRoutes(http, kit, new WebhookEndpoints(pool, endpointSettingsOf(cfg)));
  const board = new OpsBoard({
    redis, sales, auctions, ops, deadLetters, reconciliation, log, everyMs: cfg.STAMPEDE_OPS_BOARD_MS,
    brokerRates: brokerRates(managementUrlOf(cfg.STAMPEDE_AMQP_MANAGEMENT_URL, cfg.STAMPEDE_AMQP_URL), cfg.STAMPEDE_AMQP_PREFIX, log),
  });
  registerBoardRoutes(http, eventStreams, kit, board);
  if (registry) {
    registerOpsMetrics(registry, ops, deadLetters);
    gaugesFrom(registry, 'stampede_dependency_up', 'Whether the api reaches each backing service (1) or not (0); only redis makes it not ready.', ['dependency'], async () => {
      const r = await readOnce();
      return (['redis', ...DEGRADING] as const).map((name) => [{ dependency: name }, r.checks[name] === 'ok' ? 1 : 0] as [LabelValues, number]);
    });
    registerReconciliationMetrics(registry, reconciliation);
    // Prometheus scrapes it; keep it off the public network (a proxy in front of the api should not pass /metrics).
    http.route('get', '/metrics', async () => {
      const { contentType, text } = await exposition(registry);
      return { status: 200, text, contentType };
    }, { doc: METRICS_DOC });
  }
  if (cfg.STAMPEDE_STOREFRONT) registerStorefront(http, { redis, tokens });
  http.describe('get', '/v1/live', LIVE_DOC);
  registerApiReference(http, 'Flash sales and auctions: buy and bid in milliseconds, settled exactly once. Errors are RFC 9457 problem details with a stable `code`; money is an integer count of minor units with an ISO 4217 currency.');
  http.fallback();
  const live = new LiveHub({
    app, redis, redisTarget: cfg, log, tickMs: cfg.STAMPEDE_LIVE_TICK_MS, auctionSnapshot: (id) => auctions.liveSnapshot(id),
    authenticate: (token) => kit.buyerOfToken(token),
  });
  await live.start();
  if (registry) registerLiveMetrics(registry, live, eventStreams);
  feed.forwardTo((buyerId, itemJson) => live.pushToBuyer(buyerId, itemJson));
  await feed.start();
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(cfg.STAMPEDE_HTTP_HOST, cfg.STAMPEDE_HTTP_PORT, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${cfg.STAMPEDE_HTTP_HOST}:${cfg.STAMPEDE_HTTP_PORT}`))));
  });
  const port = uWS.us_socket_local_port(listenSocket as never);
  log.info({ port, salesLoaded: loaded, auctionsLoaded, buyersLoaded, process: cfg.STAMPEDE_API_PROCESS_INDEX }, 'api listening');
  // Several api processes share the port, so a scrape of it reaches any one of them: each also serves its own.
  const ownMetrics = registry && cfg.STAMPEDE_API_PROCESSES > 1 && cfg.STAMPEDE_API_METRICS_PORT !== 0
    ? await serveMetrics(registry, cfg.STAMPEDE_METRICS_HOST, cfg.STAMPEDE_API_METRICS_PORT + cfg.STAMPEDE_API_PROCESS_INDEX, log)
    : undefined;
  const heartbeat = new Heartbeat(redis, 'api', cfg.STAMPEDE_HEARTBEAT_MS, log, registry && `http://${cfg.STAMPEDE_HTTP_HOST}:${port}/metrics`);

  return {
    port,
    routes: http.routes,
    url: `http://127.0.0.1:${port}`,
    purchases,
    live,
    feed,
    eventStreams,
    async stop() {
      // Readiness turns 503 first, so a load balancer stops sending; then the socket closes.
      draining = true;
      await new Promise((r) => setTimeout(r, Math.min(500, cfg.STAMPEDE_SHUTDOWN_GRACE_MS)));
      uWS.us_listen_socket_close(listenSocket);
      await ownMetrics?.close();
      eventStreams.stop();
      board.stop();
      await Promise.allSettled([saleTally.stop(), bidTally.stop(), heartbeat.stop(), eventOutbox.stop()]);
      await Promise.allSettled([live.stop(), feed.stop(), link.stop(), pool.end(), redis.quit(), subscriber.quit()]);
      log.info('api stopped');
    },
  };
}
