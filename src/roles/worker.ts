import { loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import { createPool } from '../platform/db/pool.js';
import { migrate } from '../platform/db/migrate.js';
import { createRedis } from '../platform/redis/client.js';
import { OrdersWorker } from '../sales/orders-worker.js';
import { AuctionsWorker } from '../auctions/auctions-worker.js';
import { NotificationsWorker } from '../notifications/worker.js';
import { tellSettingsOf } from '../notifications/notifications.js';
import { ChannelWorker } from '../notifications/channel-worker.js';
import { Emails } from '../notifications/emails.js';
import { TextMessages } from '../notifications/sms.js';
import { SmtpChannel } from '../notifications/channels/email.js';
import { SmsChannel } from '../notifications/channels/sms.js';
import { unsubscribeLinksOf } from '../notifications/unsubscribe.js';
import { LivePush } from '../notifications/push.js';
import type { Role } from './role.js';
import { registryFor, serveRoleMetrics, type MetricsRole } from './metrics.js';
import { Heartbeat } from '../ops/heartbeats.js';
import { registerConsumerMetrics } from '../platform/messaging/metrics.js';
import { registerSettlementMetrics, settlementLatency } from '../sales/metrics.js';
import { registerNotificationMetrics } from '../notifications/metrics.js';
import { WebhookFanOut } from '../webhooks/fan-out.js';
import { WebhookDispatcher } from '../webhooks/dispatcher.js';
import { registerWebhookMetrics } from '../webhooks/metrics.js';
import { dispatchSettingsOf } from '../webhooks/settings.js';
import { SellerNotices } from '../notifications/seller-notices.js';
import { disabledNoticeOf } from '../webhooks/notices.js';

/**
 * The `worker` role: the orders, auctions, notifications, e-mail and SMS workers
 * side by side (those STAMPEDE_WORKER_QUEUES names), each on its own broker
 * connection and queue (all configured by the STAMPEDE_WORKER_* settings).
 * The settlement workers share one Postgres pool; the notifications, e-mail
 * and SMS workers have their own, so telling buyers never waits for a
 * settlement's connection (nor settlement for an SMTP server or an SMS
 * provider).
 */
export async function startWorker(
  cfg: Config = loadConfig(),
  log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'worker'),
  /** The role it runs as: `notifier` runs it on the notifier's metrics port. */
  role: Extract<MetricsRole, 'worker' | 'notifier'> = 'worker',
): Promise<Role & {
  worker?: OrdersWorker; auctions?: AuctionsWorker; notifications?: NotificationsWorker; email?: ChannelWorker; sms?: ChannelWorker;
  webhooks?: WebhookFanOut; webhookDispatcher?: WebhookDispatcher;
}> {
  const queues = new Set(cfg.STAMPEDE_WORKER_QUEUES);
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_DB_POOL_SIZE);
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const redis = createRedis(cfg, { name: 'stampede-worker' });
  const common = {
    pool, amqpUrl: cfg.STAMPEDE_AMQP_URL, log, prefetch: cfg.STAMPEDE_WORKER_PREFETCH, batch: cfg.STAMPEDE_WORKER_BATCH,
    concurrency: cfg.STAMPEDE_WORKER_CONCURRENCY, topology: cfg.topology,
  };
  const registry = registryFor(cfg, role);
  const worker = queues.has('orders') ? new OrdersWorker({ ...common, redis, observeSettled: registry && settlementLatency(registry) }) : undefined;
  const auctions = queues.has('auctions') ? new AuctionsWorker(common) : undefined;
  // A lane's fan-out steps run side by side, one per part, each with a transaction and two reads beside it.
  const notificationsPool = queues.has('notifications') ? createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_WORKER_CONCURRENCY + 2 * cfg.STAMPEDE_FANOUT_PARTS) : undefined;
  const notifications = notificationsPool ? new NotificationsWorker({
    ...common, pool: notificationsPool, tell: tellSettingsOf(cfg), push: new LivePush(redis, log),
    settlementFirst: { queue: cfg.topology.orders.queue, above: cfg.STAMPEDE_NOTIFICATIONS_YIELD_ABOVE, maxWaitMs: cfg.STAMPEDE_NOTIFICATIONS_YIELD_MS },
  }) : undefined;
  const emailPool = queues.has('email') ? createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_WORKER_CONCURRENCY) : undefined;
  const smtp = emailPool ? new SmtpChannel({ url: cfg.STAMPEDE_SMTP_URL, from: cfg.STAMPEDE_MAIL_FROM, timeoutMs: cfg.STAMPEDE_SMTP_TIMEOUT_MS, connections: cfg.STAMPEDE_WORKER_CONCURRENCY }) : undefined;
  const email = emailPool && smtp ? new ChannelWorker({ ...common, delivery: 'email', sender: new Emails(emailPool, smtp, unsubscribeLinksOf(cfg)) }) : undefined;
  const smsPool = queues.has('sms') ? createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_WORKER_CONCURRENCY) : undefined;
  const sms = smsPool
    ? new ChannelWorker({
      ...common, delivery: 'sms',
      sender: new TextMessages(smsPool, new SmsChannel({ url: cfg.STAMPEDE_SMS_URL, from: cfg.STAMPEDE_SMS_FROM, timeoutMs: cfg.STAMPEDE_SMS_TIMEOUT_MS })),
    })
    : undefined;
  // The webhooks worker's own pool: a slow seller endpoint never holds a settlement's connection (sends hold none).
  const webhooksPool = queues.has('webhooks') ? createPool(cfg.STAMPEDE_DATABASE_URL, cfg.STAMPEDE_WORKER_CONCURRENCY + 2) : undefined;
  const webhookDispatcher = webhooksPool ? new WebhookDispatcher({
    ...dispatchSettingsOf(cfg), pool: webhooksPool, log,
    endpointDisabled: (e) => (e.ownerId ? new SellerNotices(webhooksPool).tell(disabledNoticeOf(e, e.ownerId)) : Promise.resolve()),
  }) : undefined;
  const webhooks = webhooksPool && webhookDispatcher
    ? new WebhookFanOut({ ...common, pool: webhooksPool, publicUrl: cfg.STAMPEDE_PUBLIC_URL, made: () => webhookDispatcher.wake() })
    : undefined;
  const running = [worker, auctions, notifications, email, sms, webhooks].filter((w) => w !== undefined);
  for (const w of running) w.start();
  webhookDispatcher?.start();
  if (registry) {
    registerConsumerMetrics(registry, running);
    if (worker) registerSettlementMetrics(registry, worker);
    registerNotificationMetrics(registry, notifications, [email, sms].filter((c) => c !== undefined));
    if (webhookDispatcher) registerWebhookMetrics(registry, webhookDispatcher);
  }
  const metrics = await serveRoleMetrics(cfg, role, registry, log);
  const heartbeat = new Heartbeat(redis, role, cfg.STAMPEDE_HEARTBEAT_MS, log, metrics?.url);
  return {
    metricsUrl: metrics?.url,
    worker,
    auctions,
    notifications,
    email,
    sms,
    webhooks,
    webhookDispatcher,
    async stop() {
      await metrics?.close();
      await heartbeat.stop();
      await Promise.all([...running.map((w) => w.stop()), webhookDispatcher?.stop()]);
      smtp?.close();
      await Promise.allSettled([pool.end(), notificationsPool?.end(), emailPool?.end(), smsPool?.end(), webhooksPool?.end(), redis.quit()]);
      log.info('worker stopped');
    },
  };
}
