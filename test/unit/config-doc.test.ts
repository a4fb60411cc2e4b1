/**
 * The README's configuration table is the config schema's: every variable,
 * its type, default and doc, in the schema's order. Edit the schema, then
 * run `npm run docs:config`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { str } from 'envalid';
import { configSchema } from '../../src/platform/config.js';
import { CONFIG_BEGIN, CONFIG_END, configMarkdown, configTableDifference, configTableOf, withConfigTable } from '../../src/platform/config-doc.js';
import { projectRoot } from '../../src/platform/paths.js';

const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');

t.test("the README's table is the schema's", async (t) => {
  const difference = configTableDifference(readme);
  t.equal(difference, undefined, difference ?? 'README and schema agree');
});

t.test('the table has one row per variable, with its default and doc', async (t) => {
  const table = configMarkdown();
  const names = Object.keys(configSchema);
  t.equal(table.split('\n').length, names.length + 2, 'header, rule, one row each');
  for (const name of names) t.match(table, new RegExp(`^\\| \`${name}\` \\|`, 'm'), name);
  t.match(table, /^\| `STAMPEDE_WORKER_CONCURRENCY` \| integer from 1 to 64 \| `4` \| Batches a worker settles side by side/m);
  t.match(table, /^\| `NODE_ENV` \| one of `development`, `test`, `production` \| `development` \|/m);
  t.match(table, /^\| `STAMPEDE_REQUIRE_NATIVE_UWS` \| boolean \| `true` \|/m);
  t.match(table, /^\| `STAMPEDE_REDIS_URL` \| URL \| `redis:\/\/127\.0\.0\.1:6379` \|/m);
});

t.test('a README whose table differs is named by its first differing variable', async (t) => {
  const edited = readme.replace('| `STAMPEDE_WORKER_BATCH` | integer from 1 to 10,000 | `500` |', '| `STAMPEDE_WORKER_BATCH` | integer from 1 to 10,000 | `400` |');
  t.not(edited, readme, 'the edit applied');
  t.match(configTableDifference(edited), /^STAMPEDE_WORKER_BATCH: the README says/);

  const schemaWithNewSetting = { ...configSchema, STAMPEDE_NEW_SETTING: str({ default: 'x', desc: 'New.' }) };
  t.match(configTableDifference(readme, configMarkdown(schemaWithNewSetting)), /^STAMPEDE_NEW_SETTING: the README says\n {2}\(nothing\)/, 'a variable missing from the README');

  const { STAMPEDE_LOG_LEVEL: _dropped, ...schemaWithout } = configSchema;
  t.match(configTableDifference(readme, configMarkdown(schemaWithout)), /^STAMPEDE_LOG_LEVEL: /, 'a variable the schema no longer has');

  t.match(configTableDifference('# no table here'), /no <!-- config:begin -->/);
});

t.test('docs:config writes the table between the markers and nothing else', async (t) => {
  const page = `intro\n\n${CONFIG_BEGIN}\n\n| stale |\n\n${CONFIG_END}\n\nafter\n`;
  const written = withConfigTable(page);
  t.equal(configTableOf(written), configMarkdown());
  t.ok(written.startsWith(`intro\n\n${CONFIG_BEGIN}\n\n| variable |`));
  t.ok(written.endsWith(`\n\n${CONFIG_END}\n\nafter\n`));
  t.equal(withConfigTable(written), written, 'a second run changes nothing');
  t.equal(configTableDifference(written), undefined);
  t.throws(() => withConfigTable('no markers'), /no <!-- config:begin -->/);
});
