/**
 * `stampede all`: runs the roles as child processes of one supervisor, and
 * restarts a child that dies (backing off when it keeps dying). Migrations run
 * once here, so the children do not race for them. The api runs as
 * STAMPEDE_API_PROCESSES processes on one port (uWS listens with
 * SO_REUSEPORT, so the kernel spreads new connections across them); each
 * decides on its own, as api nodes on several hosts do (the sold-out cache,
 * the live hub and the bid batcher are per process, kept current through
 * Redis).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { childNodeFlags } from '../platform/node-flags.js';
import type { Config } from '../platform/config.js';
import { createLogger } from '../platform/log.js';

/** The roles `stampede all` and `npm start` run. */
export const ROLES = ['api', 'relay', 'worker', 'notifier', 'scheduler'];

/** The children `roles` make: one per role, STAMPEDE_API_PROCESSES for the api (each told its index). */
export function childrenOf(roles: string[], apiProcesses: number, env: NodeJS.ProcessEnv = process.env): { name: string; role: string; env: NodeJS.ProcessEnv }[] {
  return roles.flatMap((role) => role !== 'api'
    ? [{ name: role, role, env: childEnv(role, env) }]
    : Array.from({ length: apiProcesses }, (_, i) => ({ name: i === 0 ? 'api' : `api-${i}`, role, env: { ...childEnv(role, env), STAMPEDE_API_PROCESS_INDEX: String(i) } })));
}

/** A child's environment: the worker settles only (the notifier tells buyers) unless STAMPEDE_WORKER_QUEUES says otherwise. */
export function childEnv(role: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return role === 'worker' && env.STAMPEDE_WORKER_QUEUES === undefined ? { ...env, STAMPEDE_WORKER_QUEUES: 'orders,auctions' } : env;
}

/** The SMTP URL `npm start` catches mail on: the default STAMPEDE_SMTP_URL. */
export const DEV_SMTP_URL = 'smtp://127.0.0.1:1025';

/** Whether `stampede start` runs the mail catcher: with the default SMTP URL nothing else would take the mail. */
export function catchesMail(cfg: Config): boolean {
  const given = new URL(cfg.STAMPEDE_SMTP_URL);
  const dev = new URL(DEV_SMTP_URL);
  return given.protocol === dev.protocol && given.host === dev.host && given.username === '' && ['', '/'].includes(given.pathname);
}

/** Runs `roles` as children (`node <cli> <role>`), restarting any that dies, until SIGTERM or SIGINT. */
export async function supervise(cfg: Config, roles: string[], cli: string): Promise<void> {
  const log = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'all');
  // Migrate once here so the children do not race for it.
  await (await import('../platform/db/migrate.js')).migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const children = new Map<string, ChildProcess>();
  const restarts = new Map<string, number[]>();
  let stopping = false;

  const launch = (c: { name: string; role: string; env: NodeJS.ProcessEnv }) => {
    const child = spawn(process.execPath, [...childNodeFlags(c.role), cli, c.role], { stdio: 'inherit', env: c.env });
    children.set(c.name, child);
    child.on('exit', (code, signal) => {
      children.delete(c.name);
      if (stopping) return;
      const now = Date.now();
      const recent = (restarts.get(c.name) ?? []).filter((t) => now - t < 60_000);
      recent.push(now);
      restarts.set(c.name, recent);
      const delay = Math.min(10_000, 250 * 2 ** (recent.length - 1));
      log.error({ child: c.name, code, signal, restartInMs: delay }, 'child died; restarting');
      setTimeout(() => !stopping && launch(c), delay);
    });
  };
  childrenOf(roles, cfg.STAMPEDE_API_PROCESSES).forEach(launch);
  log.info({ roles }, 'supervising');

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping children');
    for (const c of children.values()) c.kill('SIGTERM');
    const check = setInterval(() => {
      if (children.size === 0) {
        clearInterval(check);
        process.exit(0);
      }
    }, 50);
    setTimeout(() => {
      for (const c of children.values()) c.kill('SIGKILL');
      process.exit(1);
    }, cfg.STAMPEDE_SHUTDOWN_GRACE_MS + 2_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

