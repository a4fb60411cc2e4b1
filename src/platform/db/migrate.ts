import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { projectRoot } from '../paths.js';
import type { Logger } from '../log.js';

/** How long a process waits for another one's migrations before giving up. */
const LOCK_WAIT_MS = 60_000;

const MIGRATIONS_DIR = join(projectRoot, 'src', 'platform', 'db', 'migrations');
const MIGRATIONS_TABLE = 'pgmigrations';

/**
 * The migrations this code has that the database has not applied (by name:
 * the file name without its extension, as node-pg-migrate records it). One
 * query, so a process starting against an up-to-date database (every start
 * but the first after a release) does not load node-pg-migrate at all: that
 * import alone was a large part of a relay's or worker's start-up.
 */
export async function pendingMigrations(databaseUrl: string): Promise<string[]> {
  const names = readdirSync(MIGRATIONS_DIR).filter((f) => /\.(sql|js|cjs|mjs)$/.test(f)).map((f) => f.replace(/\.[^.]+$/, '')).sort();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE}`);
    const applied = new Set(rows.map((r) => r.name));
    return names.filter((n) => !applied.has(n));
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return names; // no migrations table yet: a new database
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Applies every pending migration. node-pg-migrate takes an advisory lock and
 * refuses at once when another process holds it; processes starting together
 * (the roles of `stampede all`, replicas) wait for it instead, then find
 * nothing left to apply.
 */
export async function migrate(databaseUrl: string, log: Logger): Promise<void> {
  if ((await pendingMigrations(databaseUrl)).length === 0) return;
  const { runner } = await import('node-pg-migrate');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const applied = await runner({
        databaseUrl,
        dir: MIGRATIONS_DIR,
        direction: 'up',
        migrationsTable: MIGRATIONS_TABLE,
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
