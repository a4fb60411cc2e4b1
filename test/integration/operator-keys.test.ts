/**
 * Operator keys: created (shown once), listed (never the key or its hash),
 * revoked through the api and the CLI; a revocation reaches every api node
 * within a second although their caches are warm; the last active operator
 * key cannot be revoked; production revokes the development key.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { boot, holdToDocument, call, sleep, TEST_ENV, testConfig, type HttpAnswer, type System } from '../helpers/system.js';
import { createLogger } from '../../src/platform/log.js';
import { startApi } from '../../src/roles/index.js';
import { ApiKeys, hashApiKey } from '../../src/platform/auth/api-keys.js';
import { OperatorKeys } from '../../src/ops/keys.js';
import { AppError } from '../../src/platform/errors.js';
import { DEV_OPERATOR_KEY } from '../../src/platform/config.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VIEW_FIELDS = ['createdAt', 'fingerprint', 'id', 'label', 'revokedAt', 'role', 'userId'];
/** Long enough that a node answering 401 within a second was told, not timed out. */
const LONG_CACHE = { STAMPEDE_API_KEY_CACHE_MS: '5000' };

const withKey = (url: string, key: string, path: string, init: RequestInit = {}): Promise<HttpAnswer> =>
  call(`${url}${path}`, { ...init, headers: { 'x-api-key': key, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
const fingerprintOf = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 8);

/** Asks `url` with an operator key until it is refused (401): the milliseconds from `since`, or Infinity after `giveUpMs`. */
async function refusedAfter(url: string, key: string, since: number, giveUpMs = 6_000): Promise<number> {
  for (;;) {
    const a = await withKey(url, key, '/v1/ops/keys?limit=1');
    if (a.status === 401) return Date.now() - since;
    if (a.status !== 200) throw new Error(`unexpected ${a.status}: ${JSON.stringify(a.body)}`);
    if (Date.now() - since > giveUpMs) return Infinity;
    await sleep(10);
  }
}

/** A new operator key, made through the api. */
const operatorKey = async (sys: System, label: string) =>
  (await sys.operator('/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'operator', label }) })).body as { id: string; apiKey: string };

/** `stampede …` as a child process, against the test services. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: TEST_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => proc.on('exit', (code) => {
    clearTimeout(killer);
    resolve({ code, stdout, stderr });
  }));
}

t.test('create, list and revoke through the api; a key is shown once', async (t) => {
  const sys = await boot(t);
  const created = await sys.operator('/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'operator', label: 'ci deploys' }), headers: { 'idempotency-key': `k-${Date.now()}` } });
  t.equal(created.status, 201);
  t.same(Object.keys(created.body).sort(), [...VIEW_FIELDS, 'apiKey'].sort(), 'the view plus the key');
  t.match(created.body, { id: /^key_[0-9a-z]{12}$/, role: 'operator', userId: null, label: 'ci deploys', revokedAt: null, apiKey: /^stk_op_/ });
  const key = created.body.apiKey as string;
  t.equal(created.body.fingerprint, fingerprintOf(key), 'the fingerprint is the start of the key\'s SHA-256');
  t.ok(Math.abs(Date.parse(created.body.createdAt) - Date.now()) < 60_000);

  const idemKey = `k2-${Date.now()}`;
  const first = await sys.operator('/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'operator', label: 'twice' }), headers: { 'idempotency-key': idemKey } });
  const again = await sys.operator('/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'operator', label: 'twice' }), headers: { 'idempotency-key': idemKey } });
  t.equal(again.headers.get('idempotent-replayed'), 'true');
  t.same(again.body, { ...first.body, apiKey: null }, 'a replay names the key made, never the key');
  const { rows: stored } = await sys.pool.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE response::text LIKE $1', [`%${first.body.apiKey}%`]);
  t.equal(stored[0].n, 0, 'the key is never stored in clear, not even for replays');

  t.equal((await withKey(sys.url, key, '/v1/ops/keys?limit=1')).status, 200, 'the new operator key works');

  const seller = await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Shop' }) });
  const sellerKey = await sys.operator('/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'seller', userId: seller.body.id, label: 'second till' }) });
  t.equal(sellerKey.status, 201);
  t.match(sellerKey.body, { role: 'seller', userId: seller.body.id, apiKey: /^stk_sl_/ });
  const sale = {
    name: 'Drop', sku: 'KEYS-1', unitPrice: 100, currency: 'EUR', stock: 1, perBuyerLimit: 1,
    startsAt: new Date(Date.now() + 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(),
  };
  const sold = await withKey(sys.url, sellerKey.body.apiKey, '/v1/sales', { method: 'POST', body: JSON.stringify(sale) });
  t.equal(sold.status, 201, 'the seller key acts as its seller');
  t.equal(sold.body.sellerId, seller.body.id);
  t.equal((await withKey(sys.url, sellerKey.body.apiKey, '/v1/ops/keys')).status, 403, 'a seller key cannot manage keys');

  // Every page of two: each key once, in creation order, never a key or a hash.
  const listed: Record<string, unknown>[] = [];
  let text = '';
  for (let after: string | null = null, guard = 0; guard < 10_000; guard++) {
    const page: HttpAnswer = await sys.operator(`/v1/ops/keys?limit=2${after ? `&after=${after}` : ''}`);
    t.equal(page.status, 200);
    text += JSON.stringify(page.body);
    listed.push(...page.body.items);
    after = page.body.next;
    if (!after) break;
  }
  const ids = listed.map((k) => k.id);
  t.equal(new Set(ids).size, ids.length, 'no key twice across pages');
  for (const id of [created.body.id, first.body.id, sellerKey.body.id]) t.ok(ids.includes(id), `${id} is listed`);
  t.ok(listed.every((k) => Object.keys(k).sort().join() === VIEW_FIELDS.join()), 'each item is the view, nothing more');
  const order = listed.map((k) => `${k.createdAt} ${k.id}`);
  t.same(order, [...order].sort(), 'oldest first');
  const { apiKey: _sellerSecret, ...sellerView } = sellerKey.body;
  t.same(listed.find((k) => k.id === sellerKey.body.id), sellerView, 'as created, without the key');
  for (const secret of [key, sellerKey.body.apiKey, seller.body.apiKey]) {
    t.notOk(text.includes(secret), 'no key in the list');
    t.notOk(text.includes(hashApiKey(secret).toString('hex')), 'no hash in the list');
  }
  t.same((await sys.operator('/v1/ops/keys?limit=100')).body.items.map((k: { id: string }) => k.id), ids.slice(0, 100), 'one page says the same');

  const revoked = await sys.operator(`/v1/ops/keys/${created.body.id}`, { method: 'DELETE' });
  t.equal(revoked.status, 204);
  t.equal(revoked.body, undefined, 'no body');
  t.equal((await withKey(sys.url, key, '/v1/ops/keys?limit=1')).status, 401, 'refused on this node at once');
  const revokedAt = async () => (await sys.pool.query('SELECT revoked_at FROM api_keys WHERE id = $1', [created.body.id])).rows[0].revoked_at.toISOString();
  const at = await revokedAt();
  t.equal((await sys.operator(`/v1/ops/keys/${created.body.id}`, { method: 'DELETE' })).status, 204, 'revoking again is no error');
  t.equal(await revokedAt(), at, 'and keeps the first revocation time');
  t.equal((await sys.operator('/v1/ops/keys/key_000000000000', { method: 'DELETE' })).status, 404, 'an unknown key is 404');

  t.equal((await sys.operator(`/v1/ops/keys/${sellerKey.body.id}`, { method: 'DELETE' })).status, 204, 'a seller key is revoked alike');
  t.equal((await withKey(sys.url, sellerKey.body.apiKey, '/v1/sales', { method: 'POST', body: JSON.stringify(sale) })).status, 401);
  t.equal((await withKey(sys.url, seller.body.apiKey, '/v1/sales', { method: 'POST', body: JSON.stringify({ ...sale, sku: 'KEYS-2' }) })).status, 201, "the seller's other key still works");
});

t.test('an operator may revoke the key they use, never the last active operator key', async (t) => {
  const sys = await boot(t);
  const make = (label: string) => operatorKey(sys, label);
  const own = await make('rotated away');
  t.equal((await withKey(sys.url, own.apiKey, `/v1/ops/keys/${own.id}`, { method: 'DELETE' })).status, 204, 'one may revoke the key one uses');
  t.equal((await withKey(sys.url, own.apiKey, '/v1/ops/keys')).status, 401, 'which then stops working');

  // Leave two active operator keys; put the others back when done (the other tests use the test operator key).
  const [a, b] = [await make('a'), await make('b')];
  const { rows } = await sys.pool.query<{ id: string }>(
    `UPDATE api_keys SET revoked_at = now() WHERE role = 'operator' AND revoked_at IS NULL AND id <> ALL($1) RETURNING id`, [[a.id, b.id]],
  );
  t.teardown(() => sys.pool.query('UPDATE api_keys SET revoked_at = NULL WHERE id = ANY($1)', [rows.map((r) => r.id)]));

  // Revoking both at once: the lock lets exactly one through.
  const keys = new OperatorKeys(sys.pool, sys.redis, new ApiKeys(sys.pool));
  const results = await Promise.allSettled([keys.revoke(a.id), keys.revoke(b.id)]);
  t.same(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'], 'one revoked, one refused');
  const refusal = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
  t.ok(refusal instanceof AppError && refusal.code === 'CONFLICT', `refused as a conflict: ${String(refusal)}`);
  const { rows: active } = await sys.pool.query(`SELECT id FROM api_keys WHERE role = 'operator' AND revoked_at IS NULL`);
  t.equal(active.length, 1, 'one active operator key is left');
  const last = active[0].id === a.id ? a : b;

  const self = await withKey(sys.url, last.apiKey, `/v1/ops/keys/${last.id}`, { method: 'DELETE' });
  t.equal(self.status, 409);
  t.match(self.body, { code: 'CONFLICT', keyId: last.id, detail: /last active operator key/ });
  t.equal((await withKey(sys.url, last.apiKey, '/v1/ops/keys')).status, 200, 'and it still works');
  const next = (await withKey(sys.url, last.apiKey, '/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'operator', label: 'successor' }) })).body;
  t.equal((await withKey(sys.url, last.apiKey, `/v1/ops/keys/${last.id}`, { method: 'DELETE' })).status, 204, 'with a successor, it may go');
  t.equal((await withKey(sys.url, next.apiKey, '/v1/ops/keys')).status, 200);
});

t.test('a key revoked through node A is refused on node B within a second, its cache warm', async (t) => {
  const sys = await boot(t, { env: LONG_CACHE });
  const nodeB = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-b'));
  await holdToDocument(t, nodeB.url);
  t.teardown(() => nodeB.stop());
  const make = (label: string) => operatorKey(sys, label);
  const [key, control, missed] = [await make('revoked on A'), await make('revoked behind the api'), await make('revoked while B was away')];
  for (const k of [key, control, missed]) {
    t.equal((await withKey(nodeB.url, k.apiKey, '/v1/ops/keys?limit=1')).status, 200, 'B knows the key (cache warm)');
  }

  // The control: revoked in Postgres without a broadcast, B keeps accepting it from its cache.
  await sys.pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [control.id]);
  await sleep(1_200);
  t.equal((await withKey(nodeB.url, control.apiKey, '/v1/ops/keys?limit=1')).status, 200, 'untold, B still trusts its cache after 1.2 s');

  t.equal((await sys.operator(`/v1/ops/keys/${key.id}`, { method: 'DELETE' })).status, 204);
  const ms = await refusedAfter(nodeB.url, key.apiKey, Date.now());
  t.ok(ms <= 1_000, `refused on B ${ms} ms after A answered 204`);
  t.equal((await withKey(nodeB.url, missed.apiKey, '/v1/ops/keys?limit=1')).status, 200, 'B forgot only the revoked key');

  // A revocation B's subscription cannot have seen: B reconnects, and forgets every cached key.
  await sys.pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [missed.id]);
  const db = new URL(sys.cfg.STAMPEDE_REDIS_URL).pathname.slice(1) || '0';
  const subscribers = String(await sys.redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).split('\n')
    .filter((l) => / name=stampede-api-sub /.test(l) && new RegExp(` db=${db} `).test(l)).map((l) => /id=(\d+)/.exec(l)![1]!);
  t.ok(subscribers.length >= 2, `both nodes' subscribers found (${subscribers.length})`);
  const killedAt = Date.now();
  for (const id of subscribers) await sys.redis.call('CLIENT', 'KILL', 'ID', id);
  const afterReconnect = await refusedAfter(nodeB.url, missed.apiKey, killedAt);
  t.ok(afterReconnect < 3_000, `refused on B ${afterReconnect} ms after its subscription dropped (its cache holds 5 s)`);
});

t.test('without a broadcast, a node trusts a cached key for at most STAMPEDE_API_KEY_CACHE_MS', async (t) => {
  const sys = await boot(t);
  t.equal(sys.cfg.STAMPEDE_API_KEY_CACHE_MS, 1_000, 'the default');
  const key = await operatorKey(sys, 'untold');
  t.equal((await withKey(sys.url, key.apiKey, '/v1/ops/keys?limit=1')).status, 200);
  await sys.pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [key.id]);
  const ms = await refusedAfter(sys.url, key.apiKey, Date.now());
  t.ok(ms <= 1_250, `refused ${ms} ms after Postgres revoked it`);
});

t.test('stampede apikey create, list and revoke; the CLI revocation reaches a running api', async (t) => {
  const sys = await boot(t, { env: LONG_CACHE });
  const created = await cli('apikey', 'create', '--role', 'operator', '--label', 'from the cli');
  t.equal(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout);
  t.match(key, { id: /^key_/, role: 'operator', userId: null, label: 'from the cli', revokedAt: null, apiKey: /^stk_op_/, fingerprint: fingerprintOf(key.apiKey) });
  t.equal((await withKey(sys.url, key.apiKey, '/v1/ops/keys?limit=1')).status, 200, 'the api takes it (and caches it)');

  const legacy = await cli('apikey', '--role', 'operator', '--label', 'the old form');
  t.equal(legacy.code, 0, legacy.stderr);
  t.match(legacy.stdout, /^stk_op_[A-Za-z0-9_-]{32}\n$/, '`apikey --role` still prints only the key');
  t.equal((await withKey(sys.url, legacy.stdout.trim(), '/v1/ops/keys?limit=1')).status, 200);

  const listed = await cli('apikey', 'list');
  t.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const { apiKey: _secret, ...view } = key;
  t.same(lines.find((k) => k.id === key.id), view, 'listed as created, without the key');
  t.notOk(listed.stdout.includes(key.apiKey));

  const revoked = await cli('apikey', 'revoke', key.id);
  const exitedAt = Date.now();
  t.equal(revoked.code, 0, revoked.stderr);
  t.match(JSON.parse(revoked.stdout), { id: key.id, revokedAt: String });
  const ms = await refusedAfter(sys.url, key.apiKey, exitedAt);
  t.ok(ms <= 1_000, `refused by the api ${ms} ms after the CLI exited`);

  const unknown = await cli('apikey', 'revoke', 'key_000000000000');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no such API key/);
  const noSeller = await cli('apikey', 'create', '--role', 'seller');
  t.equal(noSeller.code, 1);
  t.match(noSeller.stderr, /seller key needs the seller/);
  const badId = await cli('apikey', 'revoke', 'not-an-id');
  t.not(badId.code, 0);
  t.match(badId.stderr, /not an API key id/);
});

t.test('production revokes the development operator key an earlier start stored', async (t) => {
  const sys = await boot(t, { env: LONG_CACHE });
  await new ApiKeys(sys.pool).store(DEV_OPERATOR_KEY, 'operator', null, 'stored by a development start');
  await sys.pool.query('UPDATE api_keys SET revoked_at = NULL WHERE key_hash = $1', [hashApiKey(DEV_OPERATOR_KEY)]);
  t.equal((await withKey(sys.url, DEV_OPERATOR_KEY, '/v1/ops/keys?limit=1')).status, 200, 'a non-production node takes it (and caches it)');

  const cfg = testConfig({ ...LONG_CACHE, NODE_ENV: 'production', STAMPEDE_JWT_SECRET: 'operator-keys-test-production-secret-0123' });
  const production = await startApi(cfg, createLogger(cfg.STAMPEDE_LOG_LEVEL, 'api-production'));
  await holdToDocument(t, production.url);
  const up = Date.now();
  t.teardown(() => production.stop());
  const ms = await refusedAfter(sys.url, DEV_OPERATOR_KEY, up);
  t.ok(ms <= 1_000, `the other node refuses it ${ms} ms after production started (told, its cache warm)`);
  t.equal((await withKey(production.url, DEV_OPERATOR_KEY, '/v1/ops/keys?limit=1')).status, 401, 'production refuses it');
  const { rows } = await sys.pool.query('SELECT revoked_at FROM api_keys WHERE key_hash = $1', [hashApiKey(DEV_OPERATOR_KEY)]);
  t.type(rows[0].revoked_at, Date, 'revoked in Postgres');
  t.equal((await withKey(production.url, TEST_ENV.STAMPEDE_OPERATOR_KEY!, '/v1/ops/keys?limit=1')).status, 200, 'its own bootstrap key works');
});
