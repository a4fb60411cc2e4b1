/**
 * Reconciliation (src/ops/reconciliation.ts) against a real system: a clean
 * one reports nothing; each kind of corruption is found (a sale's Redis
 * counter, an auction's Redis price and leader, a wallet's balance, an
 * accepted purchase left unsettled, a settlement Redis did not follow), the
 * safe ones are repaired and the next run is clean; the report is stored and
 * served by the api (operator key only), printed by `stampede reconcile`
 * (its exit code says whether anything is left), run by the scheduler on
 * its interval, and shown in the metrics.
 *
 * The test database is shared with the other test files, whose sales and
 * auctions stay in Postgres after their Redis is flushed (some on purpose
 * broken, e.g. auction logs with a gap): the assertions look at this file's
 * own sales, auctions, purchases and wallets.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { boot, call, TEST_ENV, testConfig, waitFor } from '../helpers/system.js';
import { bid, createAuction, waitLogged, type TestAuction } from '../helpers/auctions.js';
import type { SaleView } from '../../src/sales/sales.js';
import { scrape } from '../helpers/metrics.js';
import { createLogger } from '../../src/platform/log.js';
import { Reconciliation, type ReconciliationReport } from '../../src/ops/reconciliation.js';
import type { Finding } from '../../src/ops/findings.js';
import { saleKeys } from '../../src/sales/keys.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { readLiveSale, readPurchase } from '../../src/sales/scripts.js';
import { readLiveAuction } from '../../src/auctions/scripts.js';
import { newPurchaseId, newUserId } from '../../src/platform/ids.js';
import { ApiKeys } from '../../src/platform/auth/api-keys.js';
import { startScheduler } from '../../src/roles/index.js';
import { projectRoot } from '../../src/platform/paths.js';

const root = t;
const STUCK_AFTER_MS = 2_000;
const sys = await boot(t, { relay: true, worker: true });
const reconciliation = new Reconciliation({ pool: sys.pool, redisTarget: sys.cfg, log: createLogger('silent', 'test'), stuckAfterMs: STUCK_AFTER_MS });

const ours = new Set<string>();
const all = (r: ReconciliationReport): Finding[] => Object.values(r.checks).flatMap((c) => c.findings);
const mine = (r: ReconciliationReport) => all(r).filter((f) => ours.has(f.subject) || ours.has(f.subject.split('/')[0]!));
const codes = (fs: Finding[]) => fs.map((f) => `${f.check}:${f.code}:${f.subject}:${f.repaired ? 'repaired' : 'left'}`).sort();

let buyers: string[] = [];
let sale: SaleView;
let auction: TestAuction;
t.before(async () => {
  // Leftovers of earlier files in the shared database (see above) are found and, where safe, repaired here, before this file's checks.
  await reconciliation.run('cli');
  buyers = await sys.createBuyers(3);
  for (const b of buyers) ours.add(b);
  sale = await sys.createSale({ stock: 10, perBuyerLimit: 2 });
  ours.add(sale.id);
  for (const b of buyers) {
    const r = await sys.purchase(b, sale.id, { quantity: 1 });
    if (r.status !== 202) throw new Error(`purchase refused: ${JSON.stringify(r.body)}`);
  }
  await sys.drained(sale.id);
  await waitFor('the sale settled in Postgres', async () => (await sys.pool.query(`SELECT 1 FROM orders WHERE sale_id = $1`, [sale.id])).rowCount === 3);
  auction = await createAuction(sys.pool, sys.redis);
  ours.add(auction.id);
  await bid(sys.redis, auction, buyers[0]!, 1000);
  await bid(sys.redis, auction, buyers[1]!, 1100);
  await waitLogged(sys.pool, sys.redis, auction.id);
});

t.test('a clean system: nothing found, the report stored', async (t) => {
  const r = await reconciliation.run('cli');
  t.same(codes(mine(r)), []);
  t.ok(r.checks.sales.checked >= 1 && r.checks.auctions.checked >= 1 && r.checks.wallets.checked >= 3, 'each check looked at something');
  t.equal((await reconciliation.latest())!.id, r.id, 'the latest stored report is this run');
});

t.test('a Redis sale counter tampered with: found, repaired from Postgres, then clean', async (t) => {
  await sys.redis.hincrby(saleKeys.sale(sale.id), 'sold', 2);
  const r = await reconciliation.run('cli');
  const found = mine(r).filter((f) => f.subject === sale.id);
  t.same(codes(found), [`sales:bought_differs:${sale.id}:repaired`, `sales:counters_inconsistent:${sale.id}:repaired`, `sales:sold_differs:${sale.id}:repaired`]);
  t.match(found.find((f) => f.code === 'sold_differs')!.details, { redis: { sold: 5 }, expectedSold: 3 });
  t.match(await readLiveSale(sys.redis, sale.id), { stock: 10, available: 7, reserved: 0, sold: 3 });
  t.same(codes(mine(await reconciliation.run('cli'))), [], 'the next run is clean');
  // The repaired sale still sells: a fourth unit to a buyer with room under the limit.
  t.equal((await sys.purchase(buyers[0]!, sale.id, { quantity: 1 })).status, 202);
  await sys.drained(sale.id);
  await waitFor('the fourth order', async () => (await sys.pool.query(`SELECT 1 FROM orders WHERE sale_id = $1`, [sale.id])).rowCount === 4);
  t.same(codes(mine(await reconciliation.run('cli'))), []);
});

t.test("an auction's Redis price and leader tampered with: found, rebuilt from the log, then clean", async (t) => {
  const before = (await readLiveAuction(sys.redis, auction.id))!;
  await sys.redis.hset(auctionKeys.auction(auction.id), { price: '999999', leader: buyers[2]! });
  const r = await reconciliation.run('cli');
  const [f] = mine(r).filter((x) => x.subject === auction.id);
  t.match(f, { check: 'auctions', code: 'state_differs', repaired: true, details: { price: { redis: '999999', log: String(before.price) }, leader: { redis: buyers[2], log: before.leader } } });
  t.match(await readLiveAuction(sys.redis, auction.id), { price: before.price, leader: before.leader, seq: before.seq, bidCount: 2 });
  t.same(codes(mine(await reconciliation.run('cli'))), [], 'the next run is clean');
});

t.test("an auction's bids Redis is ahead of the log with are not a finding (on their way); a lost open auction is rebuilt", async (t) => {
  const a = await createAuction(sys.pool, sys.redis);
  ours.add(a.id);
  await bid(sys.redis, a, buyers[0]!, 1000);
  await waitLogged(sys.pool, sys.redis, a.id);
  await sys.redis.del(auctionKeys.auction(a.id), auctionKeys.bids(a.id), auctionKeys.book(a.id), auctionKeys.standing(a.id), auctionKeys.history(a.id));
  const r = await reconciliation.run('cli');
  t.same(codes(mine(r).filter((f) => f.subject === a.id)), [`auctions:lost_from_redis:${a.id}:repaired`]);
  t.match(await readLiveAuction(sys.redis, a.id), { seq: 1, bidCount: 1, leader: buyers[0] });
});

t.test("a wallet's balance off its ledger: found, never repaired (money)", async (t) => {
  await sys.pool.query(`UPDATE wallets SET balance = balance + 7 WHERE user_id = $1`, [buyers[2]]);
  // Put back when the file ends: the api, metrics and CLI tests below read it still off.
  root.teardown(() => sys.pool.query(`UPDATE wallets SET balance = balance - 7 WHERE user_id = $1`, [buyers[2]]).then(() => undefined));
  const r = await reconciliation.run('cli');
  const [f] = mine(r).filter((x) => x.check === 'wallets');
  t.match(f, { code: 'balance_differs', subject: `${buyers[2]}/EUR`, repaired: false, details: { difference: 7 } });
  t.ok(r.unrepaired >= 1);
  const again = await reconciliation.run('cli');
  t.equal(mine(again).filter((x) => x.check === 'wallets').length, 1, 'still there on the next run: nothing was changed');
});

/** An accepted purchase as reservePurchase records it, `ageMs` old, whose outbox entry never existed (lost): pending, in flight, reserved. */
async function acceptedLongAgo(saleId: string, buyerId: string, ageMs: number): Promise<string> {
  const purchaseId = newPurchaseId(saleId);
  const [seconds] = await sys.redis.time();
  const createdAt = Number(seconds) * 1000 - ageMs;
  await sys.redis.multi()
    .hincrby(saleKeys.sale(saleId), 'available', -1).hincrby(saleKeys.sale(saleId), 'reserved', 1)
    .hincrby(saleKeys.bought(saleId), buyerId, 1).hset(saleKeys.inflight(saleId), buyerId, purchaseId)
    .hset(saleKeys.purchase(saleId, purchaseId), { sale: saleId, buyer: buyerId, quantity: '1', price: '1000', currency: 'EUR', status: 'pending', reason: '', cancelRequested: '0', createdAt: String(createdAt) })
    .exec();
  ours.add(purchaseId);
  return purchaseId;
}

t.test('an accepted purchase left unsettled past the threshold: stuck, reported, not repaired; a recent one is in flight', async (t) => {
  const s = await sys.createSale({ stock: 5, perBuyerLimit: 1 });
  ours.add(s.id);
  const stuck = await acceptedLongAgo(s.id, buyers[0]!, STUCK_AFTER_MS + 5_000);
  await acceptedLongAgo(s.id, buyers[1]!, 0);
  const r = await reconciliation.run('cli');
  const found = mine(r).filter((f) => f.check === 'stuck' || f.subject === s.id);
  t.same(codes(found), [`stuck:purchase_stuck:${stuck}:left`], 'only the old one, and the sale\'s counters agree (its reserved units are the pending purchases\')');
  t.match(found[0]!.details, { saleId: s.id, buyerId: buyers[0], quantity: 1 });
  t.equal((await readPurchase(sys.redis, s.id, stuck))!.status, 'pending', 'left as it was');
});

t.test('a settlement Redis did not follow: applied as the worker would, then clean', async (t) => {
  const s = await sys.createSale({ stock: 5, perBuyerLimit: 1 });
  ours.add(s.id);
  const purchaseId = await acceptedLongAgo(s.id, buyers[2]!, STUCK_AFTER_MS + 5_000);
  await sys.pool.query(
    `INSERT INTO orders (purchase_id, sale_id, buyer_id, quantity, unit_price, amount, currency, status, accepted_at) VALUES ($1, $2, $3, 1, 1000, 1000, 'EUR', 'confirmed', now())`,
    [purchaseId, s.id, buyers[2]],
  );
  const r = await reconciliation.run('cli');
  t.same(codes(mine(r).filter((f) => f.subject === s.id || f.subject === purchaseId)), [`stuck:settlement_not_applied:${purchaseId}:repaired`], 'the counters are no finding: Postgres is ahead by that purchase alone');
  t.match(await readLiveSale(sys.redis, s.id), { available: 4, reserved: 0, sold: 1 });
  t.equal((await readPurchase(sys.redis, s.id, purchaseId))!.status, 'confirmed');
  t.same(codes(mine(await reconciliation.run('cli')).filter((f) => f.subject === s.id || f.subject === purchaseId)), []);
});

t.test('GET and POST /v1/ops/reconciliation: operators only', async (t) => {
  t.equal((await call(`${sys.url}/v1/ops/reconciliation`)).status, 401, 'no key');
  const wrong = await call(`${sys.url}/v1/ops/reconciliation`, { headers: { 'x-api-key': 'not-a-key' } });
  t.equal(wrong.status, 401);
  t.equal(wrong.headers.get('content-type'), 'application/problem+json');
  t.equal(wrong.body.code, 'UNAUTHORIZED');
  const sellerId = newUserId();
  await sys.pool.query(`INSERT INTO users (id, kind, name) VALUES ($1, 'seller', 'a seller')`, [sellerId]);
  const { apiKey } = await new ApiKeys(sys.pool).issue('seller', sellerId, 'reconciliation test');
  for (const method of ['GET', 'POST']) {
    const r = await call(`${sys.url}/v1/ops/reconciliation`, { method, headers: { 'x-api-key': apiKey } });
    t.equal(r.status, 403, `${method} with a seller key`);
    t.equal(r.body.code, 'FORBIDDEN');
  }
  const ran = await sys.operator('/v1/ops/reconciliation', { method: 'POST' });
  t.equal(ran.status, 201);
  t.equal(ran.body.trigger, 'api');
  t.type(ran.body.durationMs, 'number');
  t.ok(ran.body.checks.wallets.findings.some((f: Finding) => f.subject === `${buyers[2]}/EUR`), 'the wallet still off its ledger');
  const latest = await sys.operator('/v1/ops/reconciliation');
  t.equal(latest.status, 200);
  t.equal(latest.body.id, ran.body.id, 'GET serves the latest report');
  t.same(Object.keys(latest.body.checks).sort(), ['auctions', 'sales', 'stuck', 'wallets']);
  const key = `recon-${Date.now()}`;
  const first = await sys.operator('/v1/ops/reconciliation', { method: 'POST', headers: { 'idempotency-key': key } });
  const replay = await sys.operator('/v1/ops/reconciliation', { method: 'POST', headers: { 'idempotency-key': key } });
  t.equal(replay.body.id, first.body.id, 'an Idempotency-Key replays the run it made');
});

t.test('metrics: the latest report\'s findings per check, and when it ran', async (t) => {
  // This process' run (its stuck threshold is the test's, the api's the default): the api shows it, from Postgres.
  await reconciliation.run('cli');
  const m = await scrape(`${sys.url}/metrics`);
  t.ok(m.value('stampede_reconciliation_findings', { check: 'wallets', repaired: 'false' }) >= 1);
  t.ok(m.value('stampede_reconciliation_findings', { check: 'stuck', repaired: 'false' }) >= 1);
  t.ok(m.value('stampede_reconciliation_last_run_timestamp_seconds') > Date.now() / 1000 - 120);
  t.ok(m.has('stampede_reconciliation_last_run_duration_seconds'));
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: projectRoot, env: { ...TEST_ENV, STAMPEDE_RECONCILE_STUCK_AFTER_MS: String(STUCK_AFTER_MS), STAMPEDE_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d));
    proc.stderr.on('data', (d: Buffer) => (stderr += d));
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('stampede reconcile: a readable report or JSON, exit 1 while a finding is left', async (t) => {
  const json = await cli(['reconcile', '--json']);
  const report = JSON.parse(json.stdout) as ReconciliationReport;
  t.equal(report.trigger, 'cli');
  t.ok(report.unrepaired >= 1, 'the wallet and the stuck purchase are left');
  t.equal(json.code, 1);
  t.match(json.stderr, /"msg":"reconciliation found: wallet/, 'each finding left is logged, as JSON on stderr');
  const text = await cli(['reconcile']);
  t.equal(text.code, 1);
  t.match(text.stdout, /^reconciliation #\d+ \(cli\) at .*: \d+ finding\(s\)/);
  t.match(text.stdout, new RegExp(`FOUND    balance_differs ${buyers[2]}/EUR: wallet ${buyers[2]}/EUR holds \\d+, its \\d+ ledger entries add up to \\d+`));
  t.match(text.stdout, /wallets +\d+ checked, \d+ found, 0 repaired/);
});

t.test('the scheduler reconciles every STAMPEDE_RECONCILE_INTERVAL_MS', async (t) => {
  const before = (await reconciliation.latest())!.id;
  const s = await startScheduler(testConfig({ STAMPEDE_RECONCILE_INTERVAL_MS: '300' }), createLogger('silent', 'scheduler'));
  t.teardown(() => s.stop());
  const runs = await waitFor('two scheduled runs', async () => {
    const { rows } = await sys.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM reconciliation_runs WHERE id > $1 AND trigger = 'schedule'`, [before]);
    return rows[0]!.n >= 2 ? rows[0]!.n : undefined;
  }, 20_000);
  t.ok(runs >= 2);
  t.equal((await reconciliation.latest())!.trigger, 'schedule');
});
