/**
 * The `notifier` role: the notifications, e-mail, SMS and webhooks workers (the
 * worker role with those queues) in a process of its own at a lower CPU
 * priority (STAMPEDE_NOTIFIER_NICE), so on a busy host telling buyers takes
 * the CPU settlement leaves, not the CPU settlement needs: the orders
 * worker's throughput holds, and the buyers are told as soon as there is
 * room (their results wait in the notifications queue meanwhile, durably).
 * `stampede all` and `npm start` run it beside a worker role that settles
 * only (orders, auctions).
 */
import { setPriority } from 'node:os';
import { loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import { startWorker } from './worker.js';
import type { Role } from './role.js';

/** The queues the notifier consumes: telling buyers, and sellers' webhooks. */
export const NOTIFIER_QUEUES = ['notifications', 'email', 'sms', 'webhooks'] as const;

export async function startNotifier(cfg: Config = loadConfig(), log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'notifier')): Promise<Role> {
  try {
    // Raising one's own niceness needs no privilege; a host that refuses it runs the notifier at normal priority.
    setPriority(cfg.STAMPEDE_NOTIFIER_NICE);
  } catch (err) {
    log.warn({ err, nice: cfg.STAMPEDE_NOTIFIER_NICE }, 'notifier: could not lower its CPU priority; running at normal priority');
  }
  return startWorker({ ...cfg, STAMPEDE_WORKER_QUEUES: [...NOTIFIER_QUEUES] }, log, 'notifier');
}
