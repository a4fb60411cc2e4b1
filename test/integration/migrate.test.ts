/**
 * Roles started together (`stampede all`, replicas) all migrate at start-up:
 * on a fresh database, every one of them must succeed, and the migrations
 * run once.
 */
import t, { type Test } from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { migrate, pendingMigrations } from '../../src/platform/db/migrate.js';
import { createLogger } from '../../src/platform/log.js';
import { projectRoot } from '../../src/platform/paths.js';
import { TEST_ENV } from '../helpers/system.js';
import { randomId } from '../../src/platform/ids.js';

/** An empty database of its own, dropped when the test ends. */
async function freshDatabase(t: Test): Promise<URL> {
  const admin = new pg.Client({ connectionString: TEST_ENV.STAMPEDE_DATABASE_URL });
  await admin.connect();
  const name = `stampede_migrate_${randomId(8)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  t.teardown(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });
  const url = new URL(TEST_ENV.STAMPEDE_DATABASE_URL!);
  url.pathname = `/${name}`;
  return url;
}

t.test('six processes migrating a fresh database at once all start', async (t) => {
  const url = await freshDatabase(t);
  const log = createLogger('silent', 'test');
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => migrate(url.toString(), log)));
  t.same(results.map((r) => r.status), Array(6).fill('fulfilled'), results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)).join('; '));
  const fresh = new pg.Client({ connectionString: url.toString() });
  await fresh.connect();
  const { rows } = await fresh.query('SELECT name FROM pgmigrations ORDER BY run_on, id');
  await fresh.end();
  const files = readdirSync(join(projectRoot, 'src', 'platform', 'db', 'migrations')).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, ''));
  t.same(rows.map((r) => r.name).sort(), files.sort(), 'every migration applied exactly once');
});

t.test('identifiers compare byte by byte ("C"); the collation migration goes down and up again', async (t) => {
  const url = await freshDatabase(t);
  await migrate(url.toString(), createLogger('silent', 'test'));
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  t.teardown(() => db.end());
  const collations = async () =>
    (await db.query<{ c: string }>(
      `SELECT table_name || '.' || column_name || '=' || coalesce(collation_name, 'default') AS c FROM information_schema.columns
        WHERE table_schema = 'public' AND (table_name, column_name) IN (('orders', 'purchase_id'), ('wallets', 'user_id'), ('users', 'id'), ('users', 'name'))
        ORDER BY 1`,
    )).rows.map((r) => r.c);
  t.same(await collations(), ['orders.purchase_id=C', 'users.id=C', 'users.name=default', 'wallets.user_id=C'], 'ids in "C", names in the database collation');

  // The collation migration and every later one (which are rolled back before it).
  const files = readdirSync(join(projectRoot, 'src', 'platform', 'db', 'migrations')).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
  const fromCollation = files.slice(files.indexOf('1732700000000_identifiers-collate-c'));
  const run = (direction: 'up' | 'down') =>
    runner({ databaseUrl: url.toString(), dir: join(projectRoot, 'src', 'platform', 'db', 'migrations'), direction, migrationsTable: 'pgmigrations', count: fromCollation.length, log: () => {}, verbose: false });
  t.same((await run('down')).map((m) => m.name), [...fromCollation].reverse(), 'down to before the collation migration');
  t.same(await collations(), ['orders.purchase_id=default', 'users.id=default', 'users.name=default', 'wallets.user_id=default'], 'down: back to the database collation');
  const { rows: fks } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`);
  t.equal(fks[0]!.n, 7, 'the foreign keys are back');
  await run('up');
  t.same(await collations(), ['orders.purchase_id=C', 'users.id=C', 'users.name=default', 'wallets.user_id=C'], 'up again');
});

t.test('start-up reads what is pending with one query; a migration rolled back is pending again and re-applied', async (t) => {
  const url = await freshDatabase(t);
  const files = readdirSync(join(projectRoot, 'src', 'platform', 'db', 'migrations')).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
  t.same(await pendingMigrations(url.toString()), files, 'a new database (no migrations table) has every migration pending');
  await migrate(url.toString(), createLogger('silent', 'test'));
  t.same(await pendingMigrations(url.toString()), [], 'none after migrating');
  await runner({ databaseUrl: url.toString(), dir: join(projectRoot, 'src', 'platform', 'db', 'migrations'), direction: 'down', migrationsTable: 'pgmigrations', count: 1, log: () => {}, verbose: false });
  t.same(await pendingMigrations(url.toString()), [files[files.length - 1]], 'the rolled-back one is pending');
  await migrate(url.toString(), createLogger('silent', 'test'));
  t.same(await pendingMigrations(url.toString()), [], 'migrate applied it again');
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  t.teardown(() => db.end());
  const { rows } = await db.query<{ c: string }>(`SELECT collation_name AS c FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'purchase_id'`);
  t.equal(rows[0]!.c, 'C', 'its change is back in the schema');
});
