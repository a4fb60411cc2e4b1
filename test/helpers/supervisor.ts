/**
 * `stampede all` as a child of the test, its output collected: for the
 * tests of the supervisor and of what it runs.
 */
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { projectRoot } from '../../src/platform/paths.js';
import { TEST_ENV } from './system.js';

export interface Supervisor {
  process: ChildProcess;
  /** Everything it and its children printed so far. */
  text: string;
  /** Its exit code, once it exits. */
  exited: Promise<number | null>;
}

/** The pids of a process's children (Linux's /proc/<pid>/task/<pid>/children). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Starts `stampede all` with the test environment, `env` on top (its log at info); killed at the end of `t` if still running. */
export function startSupervisor(t: Test, env: NodeJS.ProcessEnv = {}): Supervisor {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'all'], {
    cwd: projectRoot,
    env: { ...TEST_ENV, STAMPEDE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: Supervisor = { process: child, text: '', exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  child.stdout!.on('data', (b: Buffer) => (s.text += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (s.text += b.toString()));
  t.teardown(() => {
    if (child.exitCode !== null) return;
    // Its children first: once it is gone they belong to init, and a relay or worker left running would consume later tests' queues.
    for (const pid of childPids(child.pid!)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // It ended meanwhile.
      }
    }
    child.kill('SIGKILL');
  });
  return s;
}
