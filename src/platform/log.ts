/** Structured JSON logs: quiet on the hot path, loud on failure. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** On stdout; a command whose stdout is its answer (`stampede reconcile --json`) logs to stderr (fd 2) instead. */
export function createLogger(level: string, role: string, fd: 1 | 2 = 1): Logger {
  const options = { level, base: { role, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return fd === 1 ? pino(options) : pino(options, pino.destination({ fd, sync: true }));
}
