/** The `scheduler` role: closes auctions when due, runs the promoter, gives up purchases past their reservation deadline, claims the scheduled notifications when due, sweeps the notifications and the webhook messages past their retention, keeps the dead letters (src/ops/dead-letters.ts) and reconciles (src/ops/reconciliation.ts). */
import { loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import { createPool } from '../platform/db/pool.js';
import { migrate } from '../platform/db/migrate.js';
import { createRedis } from '../platform/redis/client.js';
import { Auctions } from '../auctions/auctions.js';
import { Bids } from '../auctions/bids.js';
import { Scheduler } from '../auctions/scheduler.js';
import { ScheduledSends, sendSettingsOf } from '../notifications/sends.js';
import { SendScheduler } from '../notifications/send-scheduler.js';
import { RetentionSweep } from '../notifications/retention.js';
import { webhookRetentionSweep } from '../webhooks/retention.js';
import { retentionOf } from '../notifications/inbox.js';
import type { Role } from './role.js';
import { DeadLetterKeeper } from '../ops/dead-letters.js';
import { Reconciliation, ReconciliationSchedule } from '../ops/reconciliation.js';
import { countersFrom } from '../platform/metrics/registry.js';
import { registryFor, serveRoleMetrics } from './metrics.js';
import { Heartbeat } from '../ops/heartbeats.js';
import { ReservationDeadline } from '../sales/deadline.js';

export async function startScheduler(cfg: Config = loadConfig(), log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'scheduler')): Promise<Role & { scheduler: Scheduler; sends: SendScheduler; retention: RetentionSweep; reconciliation: Reconciliation; deadline: ReservationDeadline }> {
  // A reconciliation run holds a connection of its own while it runs (its lock).
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 3);
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const redis = createRedis(cfg, { name: 'stampede-scheduler' });
  const auctions = new Auctions(pool, redis);
  // The scheduler places no bids: it reads the standing ones for the promoter.
  const bids = new Bids(redis, auctions, { rateMax: 1, rateWindowMs: 1, idempotencyTtlMs: 1 });
  // Open auctions Redis lost come back, so their deadlines are known again.
  await auctions.loadOpen();
  const scheduler = new Scheduler({ redis, auctions, bids, log, tickMs: cfg.STAMPEDE_SCHEDULER_TICK_MS });
  scheduler.start();
  const sends = new SendScheduler({ redis, sends: new ScheduledSends(pool, redis, sendSettingsOf(cfg)), log, tickMs: cfg.STAMPEDE_SCHEDULER_TICK_MS });
  const sendsIndexed = await sends.start();
  const retention = new RetentionSweep({ pool, retention: retentionOf(cfg), log, everyMs: cfg.STAMPEDE_NOTIFICATION_SWEEP_MS });
  retention.start();
  const webhookRetention = webhookRetentionSweep(pool, cfg.STAMPEDE_WEBHOOK_RETENTION_DAYS, cfg.STAMPEDE_NOTIFICATION_SWEEP_MS, log);
  webhookRetention.start();
  const deadline = new ReservationDeadline({ redis, log, deadlineMs: cfg.STAMPEDE_RESERVATION_DEADLINE_MS, everyMs: cfg.STAMPEDE_RESERVATION_SWEEP_MS });
  deadline.start();
  const keeper = new DeadLetterKeeper({ pool, amqpUrl: cfg.STAMPEDE_AMQP_URL, topology: cfg.topology, log });
  keeper.start();
  const reconciliation = new Reconciliation({ pool, redisTarget: cfg, log, stuckAfterMs: cfg.STAMPEDE_RECONCILE_STUCK_AFTER_MS });
  const reconciling = new ReconciliationSchedule(reconciliation, cfg.STAMPEDE_RECONCILE_INTERVAL_MS, log);
  reconciling.start();
  const registry = registryFor(cfg, 'scheduler');
  if (registry) {
    countersFrom(registry, 'stampede_scheduler_actions_total', 'What the scheduler did since start: auctions closed, bids promoted, purchases given up at their reservation deadline, scheduled notifications claimed, expired notifications and webhook messages deleted, dead letters archived.', ['action'], () => [
      [{ action: 'purchase_expired' }, deadline.expired],
      [{ action: 'auction_closed' }, scheduler.closed], [{ action: 'bid_promoted' }, scheduler.promoted],
      [{ action: 'send_claimed' }, sends.claimed], [{ action: 'notification_expired' }, retention.deleted], [{ action: 'webhook_message_expired' }, webhookRetention.deleted],
      [{ action: 'dead_letter_archived' }, keeper.archived], [{ action: 'reconciliation_run' }, reconciliation.runs],
    ]);
    countersFrom(registry, 'stampede_reconciliation_repairs_total', 'Repairs the scheduler\'s reconciliation runs made since start, by check.', ['check'], () =>
      [...reconciliation.repairs].map(([check, n]): [{ check: string }, number] => [{ check }, n]));
  }
  const metrics = await serveRoleMetrics(cfg, 'scheduler', registry, log);
  const heartbeat = new Heartbeat(redis, 'scheduler', cfg.STAMPEDE_HEARTBEAT_MS, log, metrics?.url);
  log.info({ tickMs: cfg.STAMPEDE_SCHEDULER_TICK_MS, sendsIndexed, reconcileEveryMs: cfg.STAMPEDE_RECONCILE_INTERVAL_MS }, 'scheduler running');
  return {
    scheduler,
    sends,
    retention,
    reconciliation,
    deadline,
    metricsUrl: metrics?.url,
    async stop() {
      await metrics?.close();
      await heartbeat.stop();
      await Promise.all([scheduler.stop(), sends.stop(), retention.stop(), webhookRetention.stop(), deadline.stop(), keeper.stop(), reconciling.stop()]);
      await Promise.allSettled([pool.end(), redis.quit()]);
      log.info('scheduler stopped');
    },
  };
}
