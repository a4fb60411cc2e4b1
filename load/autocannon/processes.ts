/**
 * Child processes of the load tools: each role (api, relay, worker) and the
 * hello-world baseline runs in its own process with the roles' V8 flags.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';
import { roleNodeFlags } from '../../src/platform/node-flags.js';
import { SIDE_BY_SIDE_ENV } from '../../src/roles/side-by-side.js';

/**
 * The environment the bench runs Stampede in: its own database, Redis
 * database and broker prefix, so a bench never touches `npm start`'s data.
 */
export function benchEnv(apiPort: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'production',
    STAMPEDE_JWT_SECRET: process.env.STAMPEDE_JWT_SECRET ?? 'bench-secret-bench-secret-bench-secret-0123456789',
    STAMPEDE_DATABASE_URL: process.env.BENCH_DATABASE_URL ?? 'postgres://stampede:stampede@127.0.0.1:5432/stampede_bench',
    STAMPEDE_REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/2',
    STAMPEDE_AMQP_PREFIX: 'stampede-bench',
    STAMPEDE_HTTP_HOST: '127.0.0.1',
    STAMPEDE_HTTP_PORT: String(apiPort),
    // The bench's roles never collide with `npm start`'s.
    ...SIDE_BY_SIDE_ENV,
    STAMPEDE_LOG_LEVEL: 'warn',
    STAMPEDE_OPERATOR_KEY: 'bench-operator-key',
  };
}

/**
 * Starts a child process with the V8 flags of `role` (the hello-world
 * baseline runs with the api's: it is what the api is measured against);
 * resolves once `ready` says so (or at once without it).
 */
export function spawnRole(env: NodeJS.ProcessEnv, role: string, args: string[], ready?: () => Promise<boolean>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...roleNodeFlags(role), ...args], { env, stdio: ['ignore', 'inherit', 'inherit'], cwd: projectRoot });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    const deadline = Date.now() + 30_000;
    const poll = async () => {
      if (!ready || (await ready().catch(() => false))) return resolve(child);
      if (Date.now() > deadline) return reject(new Error(`${args.join(' ')} not ready after 30s`));
      setTimeout(poll, 100);
    };
    child.once('spawn', poll);
  });
}

/** Ready when the URL answers without a 5xx. */
export const answers = (url: string) => async (): Promise<boolean> => (await fetch(url)).status < 500;

const cli = join(projectRoot, 'dist', 'src', 'cli.js');

/** The hello-world baseline (hello-server.ts) on `port`, once it answers. */
export const startHelloServer = (env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> =>
  spawnRole(env, 'api', [join(projectRoot, 'dist', 'load', 'autocannon', 'hello-server.js'), String(port)], answers(`http://127.0.0.1:${port}/`));

/** `stampede api` on `port`, once it is ready; `nodeFlags` go to node before the script (see cpuProfileFlags). */
export const startApi = (env: NodeJS.ProcessEnv, port: number, nodeFlags: string[] = []): Promise<ChildProcess> =>
  spawnRole(env, 'api', [...nodeFlags, cli, 'api'], answers(`http://127.0.0.1:${port}/readyz`));

/** `stampede relay`, `worker`, `notifier` or `scheduler`, as soon as it has started. */
export const startSettlementRole = (env: NodeJS.ProcessEnv, role: 'relay' | 'worker' | 'notifier' | 'scheduler'): Promise<ChildProcess> => spawnRole(env, role, [cli, role]);

/** The roles behind the api as `stampede all` runs them (src/roles/all.ts): relay, a worker that settles only, the notifier (niced), the scheduler. */
export interface BackRoles {
  /** Each child's pid and role, for CPU shares. */
  names: [number, string][];
  stop(): Promise<void>;
}

export async function startBackRoles(env: NodeJS.ProcessEnv): Promise<BackRoles> {
  const started: [ChildProcess, string][] = [];
  const stop = async () => void await Promise.all(started.map(([child]) => stopChild(child)));
  try {
    for (const [role, roleEnv] of [
      ['relay', env], ['worker', { ...env, STAMPEDE_WORKER_QUEUES: 'orders,auctions' }], ['notifier', env], ['scheduler', env],
    ] as const) started.push([await startSettlementRole(roleEnv, role), role]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { names: started.map(([child, role]) => [child.pid!, role]), stop };
}

/** Node flags that write a V8 CPU profile of the process to load/results/profiles/ when `wanted`. */
export const cpuProfileFlags = (wanted: boolean): string[] =>
  wanted ? ['--cpu-prof', '--cpu-prof-dir', join(projectRoot, 'load', 'results', 'profiles')] : [];

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}
