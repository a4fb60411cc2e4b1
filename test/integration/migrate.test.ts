/**
 * Roles started together (`stampede all`, replicas) all migrate at start-up:
 * on a fresh database, every one of them must succeed, and the migrations
 * run once.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import { projectRoot } from '../../src/paths.js';
import { TEST_ENV } from '../helpers/system.js';
import { randomId } from '../../src/ids.js';

t.test('six processes migrating a fresh database at once all start', async (t) => {
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
  const log = createLogger('silent', 'test');
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => migrate(url.toString(), log)));
  t.same(results.map((r) => r.status), Array(6).fill('fulfilled'), results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)).join('; '));
  const fresh = new pg.Client({ connectionString: url.toString() });
  await fresh.connect();
  const { rows } = await fresh.query('SELECT name FROM pgmigrations ORDER BY run_on, id');
  await fresh.end();
  const files = readdirSync(join(projectRoot, 'src', 'db', 'migrations')).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, ''));
  t.same(rows.map((r) => r.name).sort(), files.sort(), 'every migration applied exactly once');
});
