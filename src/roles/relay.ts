/** The `relay` role: outbox streams in Redis -> RabbitMQ. */
import { loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import { createRedis } from '../platform/redis/client.js';
import { Relay } from '../platform/messaging/relay.js';
import type { Role } from './role.js';
import { countersFrom } from '../platform/metrics/registry.js';
import { registryFor, serveRoleMetrics } from './metrics.js';
import { Heartbeat } from '../ops/heartbeats.js';

export async function startRelay(cfg: Config = loadConfig(), log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'relay')): Promise<Role & { relay: Relay }> {
  const redis = createRedis(cfg, { name: 'stampede-relay', autoPipelining: false });
  const relay = new Relay({
    redis, amqpUrl: cfg.STAMPEDE_AMQP_URL, log, batch: cfg.STAMPEDE_RELAY_BATCH,
    claimIdleMs: cfg.STAMPEDE_RELAY_CLAIM_IDLE_MS, eventsPerMessage: cfg.STAMPEDE_RELAY_EVENTS_PER_MESSAGE, topology: cfg.topology,
  });
  relay.start();
  const registry = registryFor(cfg, 'relay');
  if (registry) countersFrom(registry, 'stampede_relay_events_total', 'Outbox entries the relay published, confirmed by the broker and acknowledged in Redis.', [], () => [[{}, relay.relayed]]);
  const metrics = await serveRoleMetrics(cfg, 'relay', registry, log);
  const heartbeat = new Heartbeat(redis, 'relay', cfg.STAMPEDE_HEARTBEAT_MS, log, metrics?.url);
  return {
    relay,
    metricsUrl: metrics?.url,
    async stop() {
      await metrics?.close();
      await heartbeat.stop();
      await relay.stop();
      await redis.quit().catch(() => {});
      log.info('relay stopped');
    },
  };
}
