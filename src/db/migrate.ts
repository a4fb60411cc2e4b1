import { join } from 'node:path';
import { runner } from 'node-pg-migrate';
import { projectRoot } from '../paths.js';
import type { Logger } from '../log.js';

/** How long a process waits for another one's migrations before giving up. */
const LOCK_WAIT_MS = 60_000;

/**
 * Applies every pending migration. node-pg-migrate takes an advisory lock and
 * refuses at once when another process holds it; processes starting together
 * (the roles of `stampede all`, replicas) wait for it instead, then find
 * nothing left to apply.
 */
export async function migrate(databaseUrl: string, log: Logger): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const applied = await runner({
        databaseUrl,
        dir: join(projectRoot, 'src', 'db', 'migrations'),
        direction: 'up',
        migrationsTable: 'pgmigrations',
        count: Infinity,
        log: () => {},
        verbose: false,
      });
      if (applied.length > 0) log.info({ migrations: applied.map((m) => m.name) }, 'migrations applied');
      return;
    } catch (err) {
      if (!/Another migration is already running/.test((err as Error).message) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
}
