/**
 * The real CLI as a child process: `stampede api` refuses the slow uWS
 * fallback, refuses bad configuration with exit code 2 naming the variable,
 * and with a good configuration listens, is ready, and exits 0 on SIGTERM.
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_ENV, call, waitFor } from '../helpers/system.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `stampede api` with TEST_ENV plus overrides; killed in teardown whatever happens. */
function spawnApi(t: Test, env: NodeJS.ProcessEnv, timeoutMs = 20_000): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'api'], {
    cwd: ROOT,
    env: { ...TEST_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const killer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  void exited.then(() => clearTimeout(killer));
  t.teardown(async () => {
    clearTimeout(killer);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** Waits for the child's exit, failing (and killing it) if it takes longer than `ms`. */
async function exitWithin(c: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  const res = await Promise.race([c.exited, timeout]);
  clearTimeout(timer);
  if (res === 'timeout') {
    c.proc.kill('SIGKILL');
    throw new Error(`the process did not exit within ${ms}ms\nstdout: ${c.stdout()}\nstderr: ${c.stderr()}`);
  }
  return { ...res, ms: Date.now() - start };
}

const jsonLines = (text: string): Record<string, any>[] =>
  text.split('\n').flatMap((l) => {
    try {
      const v = JSON.parse(l);
      return typeof v === 'object' && v !== null ? [v] : [];
    } catch {
      return [];
    }
  });

t.test('the slow uWS JS fallback is refused', async (t) => {
  const c = spawnApi(t, { UWS_USE_FALLBACK: '1', STAMPEDE_LOG_LEVEL: 'info' });
  const { code } = await exitWithin(c, 15_000);
  t.not(code, 0, `non-zero exit (${code})`);
  t.notOk(jsonLines(c.stdout()).some((l) => l.msg === 'api listening'), 'never listened');
  const all = c.stdout() + c.stderr();
  t.match(all, /native binary/, 'the output says the native binary did not load');
  const fatal = jsonLines(c.stdout()).find((l) => l.msg === 'api failed to start');
  t.ok(fatal, 'a fatal "api failed to start" log line');
  t.match(fatal?.err?.message ?? '', /uWebSockets\.js native binary did not load/, 'naming the cause');
});

t.test('bad configuration: exit code 2, the variable named on stderr', async (t) => {
  const cases: [string, NodeJS.ProcessEnv][] = [
    ['STAMPEDE_HTTP_PORT', { STAMPEDE_HTTP_PORT: 'notaport' }],
    ['STAMPEDE_HTTP_PORT', { STAMPEDE_HTTP_PORT: '70000' }],
    ['STAMPEDE_JWT_SECRET', { STAMPEDE_JWT_SECRET: 'short' }],
    ['STAMPEDE_MAX_BODY_BYTES', { STAMPEDE_MAX_BODY_BYTES: '-1' }],
    ['STAMPEDE_REDIS_URL', { STAMPEDE_REDIS_URL: 'not a url' }],
    // Production with its own JWT secret but the development operator key (the default).
    ['STAMPEDE_OPERATOR_KEY', { NODE_ENV: 'production', STAMPEDE_JWT_SECRET: 'startup-test-production-secret-0123456789', STAMPEDE_OPERATOR_KEY: 'dev-operator-key' }],
  ];
  // All at once: each is its own process.
  const children = cases.map(([name, env]) => ({ name, env, c: spawnApi(t, env) }));
  for (const { name, env, c } of children) {
    const { code } = await exitWithin(c, 15_000);
    const what = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
    t.equal(code, 2, `${what}: exit code 2`);
    t.match(c.stderr(), new RegExp(`invalid configuration.*${name}`), `${what}: stderr names ${name}`);
    t.notOk(/\n\s+at /.test(c.stderr()), `${what}: no stack trace`);
  }
});

t.test('a good configuration starts, is ready, and stops on SIGTERM with exit 0', async (t) => {
  const c = spawnApi(t, { STAMPEDE_LOG_LEVEL: 'info', STAMPEDE_HTTP_PORT: '0' });
  const listening = await waitFor(
    'the "api listening" log line',
    async () => {
      if (c.proc.exitCode !== null) throw new Error(`exited early (${c.proc.exitCode}): ${c.stderr()}`);
      return jsonLines(c.stdout()).find((l) => l.msg === 'api listening');
    },
    // A cold tsx start on a loaded two-core machine can take a while.
    60_000,
  );
  t.equal(listening.role, 'api', 'logged by the api role');
  t.ok(Number.isInteger(listening.port) && listening.port > 0, `listening on port ${listening.port}`);
  const url = `http://127.0.0.1:${listening.port}`;

  const health = await call(`${url}/healthz`);
  t.equal(health.status, 200, 'GET /healthz is 200');
  // Ready once RabbitMQ is connected too (the link connects in the background).
  const ready = await waitFor('GET /readyz 200', async () => {
    const r = await call(`${url}/readyz`);
    return r.status === 200 ? r : undefined;
  }, 10_000);
  t.same(ready.body, { status: 'ready', degraded: [], checks: { redis: 'ok', postgres: 'ok', rabbitmq: 'ok' } }, 'every dependency ok');

  t.ok(c.proc.kill('SIGTERM'), 'SIGTERM sent');
  const { code, signal, ms } = await exitWithin(c, 5_000);
  t.equal(code, 0, `exit code 0 (signal ${signal}) after ${ms}ms`);
  const msgs = jsonLines(c.stdout()).map((l) => l.msg);
  t.ok(msgs.includes('api stopping'), 'logged "api stopping"');
  t.ok(msgs.includes('api stopped'), 'logged "api stopped"');
  t.notOk(jsonLines(c.stdout()).some((l) => l.level >= 50), 'no error or fatal log line');
  const after = await call(`${url}/healthz`).catch((err: Error) => err);
  t.ok(after instanceof Error, 'the port no longer answers');
});
