/**
 * A seller's own API keys (`/v1/sellers/{id}/keys`): a seller lists, creates
 * and revokes its keys with one of its keys, an operator any seller's; no
 * seller sees or touches another's; a revoked key is refused on every api
 * node within a second, although their caches are warm.
 */
import t from 'tap';
import { boot, call, holdToDocument, sleep, type HttpAnswer } from '../helpers/system.js';
import { createLogger } from '../../src/platform/log.js';
import { startApi } from '../../src/roles/index.js';
import { hashApiKey } from '../../src/platform/auth/api-keys.js';

const VIEW_FIELDS = ['createdAt', 'fingerprint', 'id', 'label', 'revokedAt', 'role', 'userId'];
/** Long enough that a node answering 401 within a second was told, not timed out. */
const LONG_CACHE = { STAMPEDE_API_KEY_CACHE_MS: '5000' };

const withKey = (url: string, key: string, path: string, init: RequestInit = {}): Promise<HttpAnswer> =>
  call(`${url}${path}`, { ...init, headers: { 'x-api-key': key, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

/** Asks `url` with a seller key until it is refused (401): the milliseconds from `since`, or Infinity after `giveUpMs`. */
async function refusedAfter(url: string, key: string, path: string, since: number, giveUpMs = 6_000): Promise<number> {
  for (;;) {
    const a = await withKey(url, key, path);
    if (a.status === 401) return Date.now() - since;
    if (a.status !== 200) throw new Error(`unexpected ${a.status}: ${JSON.stringify(a.body)}`);
    if (Date.now() - since > giveUpMs) return Infinity;
    await sleep(10);
  }
}

t.test('a seller lists, creates and revokes its own keys; an operator any seller\'s; nobody another\'s', async (t) => {
  const sys = await boot(t);
  const shop = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Shop' }) })).body as { id: string; apiKey: string };
  const rival = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Rival' }) })).body as { id: string; apiKey: string };
  const keysOf = (id: string) => `/v1/sellers/${id}/keys`;

  const idem = `sk-${Date.now()}`;
  const created = await withKey(sys.url, shop.apiKey, keysOf(shop.id), { method: 'POST', body: JSON.stringify({ label: 'warehouse' }), headers: { 'idempotency-key': idem } });
  t.equal(created.status, 201);
  t.same(Object.keys(created.body).sort(), [...VIEW_FIELDS, 'apiKey'].sort(), 'the view plus the key');
  t.match(created.body, { id: /^key_[0-9a-z]{12}$/, role: 'seller', userId: shop.id, label: 'warehouse', revokedAt: null, apiKey: /^stk_sl_/ });
  const replay = await withKey(sys.url, shop.apiKey, keysOf(shop.id), { method: 'POST', body: JSON.stringify({ label: 'warehouse' }), headers: { 'idempotency-key': idem } });
  t.equal(replay.headers.get('idempotent-replayed'), 'true');
  t.same(replay.body, { ...created.body, apiKey: null }, 'a replay names the key made, never the key');

  const sale = {
    name: 'Drop', sku: 'SK-1', unitPrice: 100, currency: 'EUR', stock: 1, perBuyerLimit: 1,
    startsAt: new Date(Date.now() + 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(),
  };
  const sold = await withKey(sys.url, created.body.apiKey, '/v1/sales', { method: 'POST', body: JSON.stringify(sale) });
  t.equal(sold.status, 201, 'the new key acts as its seller');
  t.equal(sold.body.sellerId, shop.id);

  const byOperator = await sys.operator(keysOf(shop.id), { method: 'POST', body: JSON.stringify({ label: 'made by ops' }) });
  t.equal(byOperator.status, 201, 'an operator creates a key for a seller');
  t.match(byOperator.body, { role: 'seller', userId: shop.id, label: 'made by ops' });

  const listed = await withKey(sys.url, shop.apiKey, `${keysOf(shop.id)}?limit=100`);
  t.equal(listed.status, 200);
  const ids = listed.body.items.map((k: { id: string }) => k.id);
  t.equal(ids.length, 3, 'its creation key, its own new one and the operator\'s');
  t.ok(ids.includes(created.body.id) && ids.includes(byOperator.body.id));
  t.ok(listed.body.items.every((k: Record<string, unknown>) => k.userId === shop.id && k.role === 'seller'), 'only its keys');
  t.ok(listed.body.items.every((k: Record<string, unknown>) => Object.keys(k).sort().join() === VIEW_FIELDS.join()), 'never a key or hash');
  const text = JSON.stringify(listed.body);
  for (const secret of [shop.apiKey, created.body.apiKey]) {
    t.notOk(text.includes(secret));
    t.notOk(text.includes(hashApiKey(secret).toString('hex')));
  }
  const page1 = await withKey(sys.url, shop.apiKey, `${keysOf(shop.id)}?limit=2`);
  t.equal(page1.body.items.length, 2);
  const page2 = await withKey(sys.url, shop.apiKey, `${keysOf(shop.id)}?limit=2&after=${page1.body.next}`);
  t.same([...page1.body.items, ...page2.body.items].map((k: { id: string }) => k.id), ids, 'paged: the same keys in the same order');
  t.equal(page2.body.next, null);
  t.same((await sys.operator(`${keysOf(shop.id)}?limit=100`)).body, listed.body, 'an operator sees the same list');

  // The rival: neither its list, nor a key for it, nor a revocation of its key, nor the shop's key through its path.
  const rivalKeyId = (await sys.operator(keysOf(rival.id))).body.items[0].id as string;
  t.equal((await withKey(sys.url, shop.apiKey, keysOf(rival.id))).status, 404, 'another seller\'s keys are absent');
  t.equal((await withKey(sys.url, shop.apiKey, keysOf(rival.id), { method: 'POST', body: JSON.stringify({ label: 'x' }) })).status, 404);
  t.equal((await withKey(sys.url, shop.apiKey, `${keysOf(rival.id)}/${rivalKeyId}`, { method: 'DELETE' })).status, 404);
  t.equal((await withKey(sys.url, shop.apiKey, `${keysOf(shop.id)}/${rivalKeyId}`, { method: 'DELETE' })).status, 404, 'nor through its own path');
  t.equal((await sys.operator(`${keysOf(shop.id)}/${rivalKeyId}`, { method: 'DELETE' })).status, 404, 'an operator neither, through the wrong seller');
  t.equal((await withKey(sys.url, rival.apiKey, keysOf(rival.id))).status, 200, 'the rival\'s key still works');
  t.equal((await sys.operator(`${keysOf(shop.id)}?after=${rivalKeyId}`)).status, 400, 'a cursor from another seller\'s list is no cursor of this one');
  const { rows } = await sys.pool.query(`SELECT count(*)::int AS n FROM api_keys WHERE user_id = $1`, [rival.id]);
  t.equal(rows[0].n, 1, 'the rival has its one key');

  // Revoking: by the seller, and by an operator.
  t.equal((await withKey(sys.url, shop.apiKey, `${keysOf(shop.id)}/${created.body.id}`, { method: 'DELETE' })).status, 204);
  t.equal((await withKey(sys.url, created.body.apiKey, keysOf(shop.id))).status, 401, 'refused at once on this node');
  t.equal((await withKey(sys.url, shop.apiKey, `${keysOf(shop.id)}/${created.body.id}`, { method: 'DELETE' })).status, 204, 'again: 204');
  t.equal((await sys.operator(`${keysOf(shop.id)}/${byOperator.body.id}`, { method: 'DELETE' })).status, 204, 'an operator revokes one');
  const after = (await withKey(sys.url, shop.apiKey, `${keysOf(shop.id)}?limit=100`)).body.items as { id: string; revokedAt: string | null }[];
  t.same(after.filter((k) => k.revokedAt !== null).map((k) => k.id).sort(), [created.body.id, byOperator.body.id].sort(), 'listed as revoked');
  t.equal((await withKey(sys.url, shop.apiKey, '/v1/ops/keys')).status, 403, 'a seller key still cannot manage operator keys');
});

t.test('a seller key revoked through node A is refused on node B within a second, its cache warm', async (t) => {
  const sys = await boot(t, { env: LONG_CACHE });
  const nodeB = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-b'));
  await holdToDocument(t, nodeB.url);
  t.teardown(() => nodeB.stop());
  const shop = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Shop' }) })).body as { id: string; apiKey: string };
  const path = `/v1/sellers/${shop.id}/keys`;
  const make = async (label: string) => (await withKey(sys.url, shop.apiKey, path, { method: 'POST', body: JSON.stringify({ label }) })).body as { id: string; apiKey: string };
  const [doomed, control] = [await make('to revoke'), await make('kept')];
  for (const k of [doomed, control, shop]) t.equal((await withKey(nodeB.url, k.apiKey, path)).status, 200, 'B knows the key (cache warm)');

  // The control for the cache: revoked behind the api's back, B keeps trusting it (so a fast refusal below was the broadcast).
  await sys.pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [control.id]);
  await sleep(1_200);
  t.equal((await withKey(nodeB.url, control.apiKey, path)).status, 200, 'untold, B still trusts its cache after 1.2 s');
  await sys.pool.query('UPDATE api_keys SET revoked_at = NULL WHERE id = $1', [control.id]);

  t.equal((await withKey(sys.url, shop.apiKey, `${path}/${doomed.id}`, { method: 'DELETE' })).status, 204, 'the seller revokes it on A');
  const ms = await refusedAfter(nodeB.url, doomed.apiKey, path, Date.now());
  t.ok(ms <= 1_000, `refused on B ${ms} ms after A answered 204`);
  t.equal((await withKey(sys.url, doomed.apiKey, path)).status, 401, 'and on A');
  t.equal((await withKey(nodeB.url, control.apiKey, path)).status, 200, 'B forgot only the revoked key');
  t.equal((await withKey(nodeB.url, shop.apiKey, path)).status, 200);

  // A seller may revoke the key it calls with: it stops working on both nodes.
  t.equal((await withKey(nodeB.url, shop.apiKey, `${path}/${(await sys.operator(path)).body.items[0].id}`, { method: 'DELETE' })).status, 204, 'its own key, on B');
  const own = await refusedAfter(sys.url, shop.apiKey, path, Date.now());
  t.ok(own <= 1_000, `refused on A ${own} ms after B answered 204`);
  t.equal((await withKey(nodeB.url, shop.apiKey, path)).status, 401);
});
