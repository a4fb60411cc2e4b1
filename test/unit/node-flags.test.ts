/**
 * The V8 flags role processes run with (src/platform/node-flags.ts): each
 * role its young generation (the api a small one, for short pauses; the
 * others a large one, for less collecting), a child gets them unless its
 * parent already chose a value, and a process started with them really has
 * the young generation they name.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { childNodeFlags, roleNodeFlags } from '../../src/platform/node-flags.js';

t.test('the api runs with 16 MB semi-spaces, every other role with 64 MB', async (t) => {
  t.same(roleNodeFlags('api'), ['--max-semi-space-size=16']);
  for (const role of ['relay', 'worker', 'notifier', 'scheduler']) t.same(roleNodeFlags(role), ['--max-semi-space-size=64'], role);
});

t.test('a child gets its role flags, after nothing and before the parent flags', async (t) => {
  t.same(childNodeFlags('worker', [], ''), roleNodeFlags('worker'));
  t.same(childNodeFlags('api', ['--enable-source-maps'], '--no-warnings'), [...roleNodeFlags('api'), '--enable-source-maps']);
});

t.test("the parent's own value of a flag wins", async (t) => {
  t.same(childNodeFlags('worker', ['--max-semi-space-size=8'], ''), ['--max-semi-space-size=8'], 'on its command line');
  t.same(childNodeFlags('api', [], '--no-warnings --max-semi-space-size=32'), [], 'in NODE_OPTIONS, which the child inherits');
});

t.test("a process started with a role's flags has the young generation they name", async (t) => {
  // The young generation is three semi-spaces: 64 MB instead of 16 MB adds 144 MB.
  const probe = "console.log(require('v8').getHeapStatistics().total_available_size)";
  const run = (flags: string[]) => Number(execFileSync(process.execPath, [...flags, '-e', probe], { encoding: 'utf8', env: {} }));
  const gained = run(roleNodeFlags('worker')) - run(roleNodeFlags('api'));
  t.ok(gained >= 100 * 2 ** 20, `${Math.round(gained / 2 ** 20)} MB more heap for the worker than for the api`);
});
