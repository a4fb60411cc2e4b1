/**
 * One role as a process: starts it, and on SIGTERM or SIGINT stops it
 * gracefully (stop taking work, finish or hand back what is in flight, close
 * connections) within the grace period, else exits 1.
 */
import type { Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import type { Role } from './role.js';

export async function runRole(cfg: Config, name: string, load: () => Promise<(cfg: Config, log: Logger) => Promise<Role>>): Promise<void> {
  const log = createLogger(cfg.STAMPEDE_LOG_LEVEL, name);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  let role: Role;
  try {
    const start = await load();
    role = await start(cfg, log);
  } catch (err) {
    log.fatal({ err }, `${name} failed to start`);
    // Also on stderr, so the reason shows whatever the log level.
    process.stderr.write(`stampede: ${name} failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${name} stopping`);
    const force = setTimeout(() => {
      log.error(`${name} did not stop within ${cfg.STAMPEDE_SHUTDOWN_GRACE_MS}ms; exiting`);
      process.exit(1);
    }, cfg.STAMPEDE_SHUTDOWN_GRACE_MS);
    force.unref();
    role.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, `${name} stop failed`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

