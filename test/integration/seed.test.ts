/**
 * `stampede seed`: funded buyers (each credit a ledger entry), a sale, and a
 * tokens file whose every token is a valid buyer token; re-runnable.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';
import { seedDemo } from '../../src/dev/demo.js';
import { createBuyerTokens } from '../../src/platform/auth/tokens.js';
import { boot, TEST_ENV } from '../helpers/system.js';

t.test('seed creates funded buyers, a sale and a tokens file, and can be re-run', async (t) => {
  const sys = await boot(t, { api: false });
  const dir = t.testdir({});
  const runs: { saleId: string; auctionId?: string; buyers: number; tokens: string }[] = [];
  for (const run of [1, 2]) {
    const tokens = join(dir, `tokens-${run}.txt`);
    const auction = run === 2 ? ['--auction'] : [];
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'seed', '--buyers', '1500', '--stock', '7', '--limit', '2', '--funds', '4200', '--tokens', tokens, ...auction], {
      cwd: projectRoot, env: TEST_ENV, encoding: 'utf8', timeout: 120_000,
    });
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, /seed: buyers 1500\/1500/, 'progress as plain lines when stderr is not a terminal');
    runs.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
  }
  t.not(runs[0]!.saleId, runs[1]!.saleId, 'each run makes its own sale');
  t.notOk(runs[0]!.auctionId, 'no auction unless asked');
  const { rows: [auction] } = await sys.pool.query('SELECT status, start_price::int AS price FROM auctions WHERE id = $1', [runs[1]!.auctionId]);
  t.same(auction, { status: 'open', price: 100 }, '--auction creates an open auction for the bid war');

  const lines = readFileSync(runs[1]!.tokens, 'utf8').trim().split('\n');
  t.equal(lines.length, 1500);
  const verify = createBuyerTokens(sys.cfg.STAMPEDE_JWT_SECRET, 60);
  const ids = lines.map((l) => l.split(' ')[0]!);
  const wrong = lines.filter((l) => {
    const [id, token] = l.split(' ');
    try {
      return verify.verify(token!) !== id;
    } catch {
      return true;
    }
  });
  t.same(wrong, [], 'every token verifies as its own buyer');
  t.equal(new Set(ids).size, 1500, 'distinct buyers');
  const { rows: [w] } = await sys.pool.query(
    `SELECT count(*)::int AS n, min(balance)::int AS lo, max(balance)::int AS hi FROM wallets WHERE user_id = ANY($1) AND currency = 'EUR'`, [ids]);
  t.same(w, { n: 1500, lo: 4200, hi: 4200 }, 'every buyer funded');
  const { rows: [l] } = await sys.pool.query(
    `SELECT count(*)::int AS n, sum(amount)::bigint AS total FROM ledger_entries WHERE user_id = ANY($1) AND kind = 'credit'`, [ids]);
  t.same(l, { n: 1500, total: 1500 * 4200 }, 'each credit is a ledger entry');
  const { rows: [s] } = await sys.pool.query('SELECT stock, per_buyer_limit FROM sales WHERE id = $1', [runs[1]!.saleId]);
  t.same(s, { stock: 7, per_buyer_limit: 2 });
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'seed', '--buyers', '-3'], { cwd: projectRoot, env: TEST_ENV, encoding: 'utf8' });
  t.not(bad.status, 0, 'a bad option is refused');
  t.match(bad.stderr, /positive integer/);
});

t.test('on a terminal, seed shows progress bars', async (t) => {
  await boot(t, { api: false });
  const dir = t.testdir({});
  // script(1) runs the command on a pseudo-terminal, so stderr is a TTY.
  const cmd = `${process.execPath} --import tsx src/cli.ts seed --buyers 300 --tokens ${join(dir, 'tokens.txt')}`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: projectRoot, env: { ...TEST_ENV, TERM: 'xterm' }, encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, 'exits 0');
  // eslint-disable-next-line no-control-regex
  const screen = r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  for (const phase of ['buyers', 'tokens', 'wallets']) t.match(screen, new RegExp(`${phase}\\s*\\[[█░]+\\] 300/300`), `a full ${phase} bar`);
  t.notMatch(screen, /seed: buyers \d+\/300/, 'not the plain lines');
  t.match(screen, /"saleId":"sal_/, 'and the result');
});

t.test('the npm start demo: a sale, an auction and three funded buyers, reused on a re-run', async (t) => {
  const sys = await boot(t, { api: false });
  const first = await seedDemo(sys.cfg, sys.pool, sys.redis);
  const second = await seedDemo(sys.cfg, sys.pool, sys.redis);
  const ids = (text: string, re: RegExp) => [...text.matchAll(re)].map((m) => m[1]);
  t.same(ids(second, /sale (sal_\w+)/g).slice(0, 1), ids(first, /sale (sal_\w+)/g).slice(0, 1), 'the same sale');
  t.same(ids(second, /auction (auc_\w+)/g).slice(0, 1), ids(first, /auction (auc_\w+)/g).slice(0, 1), 'the same auction');
  const auctionId = ids(first, /auction (auc_\w+)/g)[0]!;
  t.ok(await sys.redis.exists(`{auction:${auctionId}}`), 'the auction is live in Redis');
  t.match(first, /curl -s -X POST .*\/v1\/auctions\/auc_\w+\/bids/);
});
