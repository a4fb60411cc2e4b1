/**
 * k6 cannot be installed here, so its scripts are kept honest by type-checking
 * them against @types/k6, and by checking that the check catches a mistake.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';

const tsc = join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
const k6Dir = join(projectRoot, 'load', 'k6');

t.test('the k6 scripts type-check against @types/k6', async (t) => {
  const scripts = readdirSync(k6Dir).filter((f) => f.endsWith('.js'));
  t.ok(['purchase-spike.js', 'sold-out-storm.js', 'soak.js', 'bid-war.js'].every((s) => scripts.includes(s)), 'all four scripts exist');
  const r = spawnSync(process.execPath, [tsc, '-p', join(k6Dir, 'tsconfig.json')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout + r.stderr);
});

t.test('a k6 script misusing the k6 API fails the check', async (t) => {
  const dir = t.testdir({});
  const k6 = join(dir, 'k6');
  mkdirSync(k6);
  copyFileSync(join(k6Dir, 'tsconfig.json'), join(k6, 'tsconfig.json'));
  writeFileSync(join(k6, 'broken.js'), "// @ts-check\nimport http from 'k6/http';\nexport default function () { http.post(42); }\n");
  const r = spawnSync(process.execPath, [tsc, '-p', join(k6, 'tsconfig.json')], { encoding: 'utf8', cwd: projectRoot });
  t.not(r.status, 0, 'tsc refuses it');
  t.match(r.stdout, /broken\.js/);
});

t.test('the scenarios file the k6 scripts and the bench share is valid', async (t) => {
  const s = JSON.parse((await import('node:fs')).readFileSync(join(projectRoot, 'load', 'scenarios.json'), 'utf8'));
  t.ok(s.connections > 0);
  t.ok(s.flashSale.stock > 0 && s.flashSale.buyers >= 100_000, 'the flash sale has 100,000+ buyers');
  t.same(s.expectedStatuses, [202, 409, 429]);
});
