import { join } from 'node:path';
import { runner } from 'node-pg-migrate';
import { projectRoot } from '../paths.js';
import type { Logger } from '../log.js';

/** Applies every pending migration (under an advisory lock, so concurrent starts are safe). */
export async function migrate(databaseUrl: string, log: Logger): Promise<void> {
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
}
