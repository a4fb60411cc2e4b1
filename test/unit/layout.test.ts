/**
 * The layout's import rules (README "Layout"): the platform knows no product,
 * the event catalogue imports nothing, products never import the roles, the
 * CLI or the developer tools, and product code reaches pg, amqplib and uWS
 * only through the platform (the live hub names uWS's types).
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';

const src = join(projectRoot, 'src');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));

/** Every module a file imports (type-only imports too, unless `runtime`): `src/...` paths for relative ones, the package name for the rest. */
function importsOf(file: string, runtime = false): string[] {
  let text = readFileSync(file, 'utf8');
  if (runtime) text = text.replace(/^import type [^;]*;$/gm, '');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map(([, spec]) =>
    spec!.startsWith('.') ? relative(projectRoot, normalize(join(dirname(file), spec!))) : spec!.split('/')[0]!,
  );
}

const area = (path: string) => path.split('/')[1]!; // src/<area>/...
const PRODUCTS = ['sales', 'auctions', 'buyers', 'live', 'ops', 'notifications', 'webhooks'];

t.test('the platform imports nothing from a product, the roles, the CLI or the developer tools', async (t) => {
  for (const file of files(join(src, 'platform'))) {
    for (const target of importsOf(file).filter((p) => p.startsWith('src/'))) {
      t.ok(['platform', 'events'].includes(area(target)), `${relative(projectRoot, file)} -> ${target}`);
    }
  }
});

t.test('the event catalogue imports nothing', async (t) => {
  for (const file of files(join(src, 'events'))) t.same(importsOf(file), [], relative(projectRoot, file));
});

t.test('products import neither the roles, the CLI nor the developer tools', async (t) => {
  for (const product of PRODUCTS) {
    for (const file of files(join(src, product))) {
      for (const target of importsOf(file).filter((p) => p.startsWith('src/'))) {
        t.notOk(['roles', 'dev', 'cli.js'].includes(area(target)), `${relative(projectRoot, file)} -> ${target}`);
      }
    }
  }
});

t.test('product code reaches pg, amqplib and uWebSockets.js only through the platform (their types aside)', async (t) => {
  for (const product of PRODUCTS) {
    for (const file of files(join(src, product))) {
      for (const pkg of importsOf(file, true).filter((p) => !p.startsWith('src/'))) {
        t.notOk(['pg', 'amqplib', 'uWebSockets.js'].includes(pkg), `${relative(projectRoot, file)} imports ${pkg}`);
      }
    }
  }
});
