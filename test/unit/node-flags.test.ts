/**
 * The V8 flags role processes run with (src/node-flags.ts): a child gets
 * them unless its parent already chose a value, and a process started with
 * them really has the larger young generation.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { childNodeFlags, ROLE_NODE_FLAGS } from '../../src/platform/node-flags.js';

t.test('a child gets the role flags, after nothing and before the parent flags', async (t) => {
  t.same(childNodeFlags([], ''), ROLE_NODE_FLAGS);
  t.same(childNodeFlags(['--enable-source-maps'], '--no-warnings'), [...ROLE_NODE_FLAGS, '--enable-source-maps']);
});

t.test("the parent's own value of a flag wins", async (t) => {
  t.same(childNodeFlags(['--max-semi-space-size=8'], ''), ['--max-semi-space-size=8'], 'on its command line');
  t.same(childNodeFlags([], '--no-warnings --max-semi-space-size=16'), [], 'in NODE_OPTIONS, which the child inherits');
});

t.test('a process started with the flags has the larger young generation', async (t) => {
  // The young generation is three semi-spaces: 64 MB instead of 16 MB adds 144 MB.
  const probe = "console.log(require('v8').getHeapStatistics().total_available_size)";
  const run = (flags: string[]) => Number(execFileSync(process.execPath, [...flags, '-e', probe], { encoding: 'utf8', env: {} }));
  const gained = run(ROLE_NODE_FLAGS) - run([]);
  t.ok(gained >= 100 * 2 ** 20, `${Math.round(gained / 2 ** 20)} MB more heap with the flags`);
});
