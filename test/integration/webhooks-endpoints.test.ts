/**
 * Sellers' webhook endpoints through the api: the public event catalogue,
 * registering (a secret shown once), listing, reading, changing and
 * deleting, each seller seeing only its own and an operator all, and secret
 * rotation (a new secret, the old one kept for the overlap).
 */
import t from 'tap';
import { boot, call, OPERATOR_KEY } from '../helpers/system.js';
import { newSeller } from '../helpers/webhooks.js';

const sys = await boot(t, { env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } });
const ada = await newSeller(sys, 'Ada');
const bob = await newSeller(sys, 'Bob');
await sys.pool.query('DELETE FROM webhook_endpoints');

const as = (key: string, method: string, path: string, body?: unknown) =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

const PUBLIC = [
  'sale.created', 'sale.updated', 'sale.sold_out', 'sale.closed', 'purchase.accepted', 'purchase.confirmed', 'purchase.failed', 'purchase.cancelled',
  'purchase.refunded', 'auction.created', 'auction.extended', 'auction.closed', 'auction.settled', 'auction.cancelled', 'bid.placed',
];

t.test('GET /v1/event-types: every public type, its version and the JSON Schema of its data', async (t) => {
  const r = await call(`${sys.url}/v1/event-types`);
  t.equal(r.status, 200);
  const items = r.body.items as { name: string; version: number; type: string; schema: { type: string }; highVolume: boolean }[];
  t.same(items.map((e) => e.name).sort(), [...PUBLIC].sort(), 'exactly the public types');
  for (const e of items) {
    t.equal(e.type, `stampede.${e.name}.v${e.version}`, `${e.name}: its CloudEvent type`);
    t.equal(e.schema.type, 'object', `${e.name}: a schema of its data`);
  }
  t.equal(items.find((e) => e.name === 'bid.placed')?.highVolume, true, 'bid.placed is high volume');
  t.notOk(items.some((e) => e.name.startsWith('notification.') || e.name === 'auction.outbid'), 'no internal type is listed');
  const one = await call(`${sys.url}/v1/event-types/sale.sold_out`);
  t.equal(one.status, 200);
  t.equal(one.body.name, 'sale.sold_out');
  t.equal((await call(`${sys.url}/v1/event-types/auction.outbid`)).status, 404, 'an internal type is not public');
});

t.test('a seller registers, reads, lists, changes and deletes its own endpoints, and sees no one else\'s', async (t) => {
  const created = await as(ada.key, 'POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/hooks', events: ['purchase.confirmed', 'sale.sold_out'], description: 'warehouse' });
  t.equal(created.status, 201);
  t.match(created.body.id, /^whk_[0-9a-z]{12}$/);
  t.match(created.body.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  t.ok(Buffer.from(created.body.secret.slice(6), 'base64').length >= 24, 'the secret is at least 24 random bytes');
  t.equal(created.body.ownerId, ada.id);
  t.same(created.body.events, ['purchase.confirmed', 'sale.sold_out']);
  const id = created.body.id as string;

  const read = await as(ada.key, 'GET', `/v1/webhooks/${id}`);
  t.equal(read.status, 200);
  t.notOk('secret' in read.body, 'the secret is shown only once');
  t.equal(read.body.description, 'warehouse');

  const bobs = await as(bob.key, 'POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/bob', events: ['bid.placed'] });
  t.equal(bobs.status, 201);
  t.equal((await as(bob.key, 'GET', `/v1/webhooks/${id}`)).status, 404, "another seller's endpoint is answered as missing");
  t.equal((await as(bob.key, 'PATCH', `/v1/webhooks/${id}`, { enabled: false })).status, 404, 'nor can it be changed');
  t.equal((await as(bob.key, 'DELETE', `/v1/webhooks/${id}`)).status, 404, 'nor deleted');
  t.equal((await as(bob.key, 'POST', `/v1/webhooks/${id}/rotate-secret`)).status, 404, 'nor rotated');
  t.equal((await as(bob.key, 'GET', `/v1/webhooks/${id}/deliveries`)).status, 404, 'nor its deliveries read');
  t.same((await as(ada.key, 'GET', '/v1/webhooks')).body.items.map((e: { id: string }) => e.id), [id], 'Ada lists her own');
  t.same((await as(bob.key, 'GET', '/v1/webhooks')).body.items.map((e: { id: string }) => e.id), [bobs.body.id], 'Bob his own');
  const all = await as(OPERATOR_KEY, 'GET', '/v1/webhooks?limit=1');
  t.equal(all.body.items.length, 1, 'an operator pages through every endpoint');
  const rest = await as(OPERATOR_KEY, 'GET', `/v1/webhooks?after=${all.body.next}`);
  t.same([...all.body.items, ...rest.body.items].map((e: { id: string }) => e.id).sort(), [id, bobs.body.id].sort());

  const changed = await as(ada.key, 'PATCH', `/v1/webhooks/${id}`, { events: ['bid.placed'], enabled: false });
  t.equal(changed.status, 200);
  t.same(changed.body.events, ['bid.placed']);
  t.equal(changed.body.enabled, false);
  t.equal(changed.body.disabledReason, 'owner');
  const again = await as(ada.key, 'PATCH', `/v1/webhooks/${id}`, { enabled: true, url: 'http://127.0.0.1:10/other' });
  t.equal(again.body.enabled, true);
  t.equal(again.body.disabledReason, null);
  t.equal(again.body.url, 'http://127.0.0.1:10/other');

  t.equal((await as(ada.key, 'DELETE', `/v1/webhooks/${id}`)).status, 204);
  t.equal((await as(ada.key, 'GET', `/v1/webhooks/${id}`)).status, 404, 'deleted');
  t.equal((await as(ada.key, 'DELETE', `/v1/webhooks/${id}`)).status, 404, 'once');
});

t.test('an Idempotency-Key replays the registration without the secret', async (t) => {
  const body = { url: 'http://127.0.0.1:9/idem', events: ['sale.created'] };
  const post = () => call(`${sys.url}/v1/webhooks`, { method: 'POST', headers: { 'x-api-key': ada.key, 'content-type': 'application/json', 'idempotency-key': 'wh-1' }, body: JSON.stringify(body) });
  const first = await post();
  const second = await post();
  t.equal(first.status, 201);
  t.equal(second.status, 201);
  t.equal(second.body.id, first.body.id, 'the same endpoint');
  t.equal(second.body.secret, null, 'its secret is not shown again');
  t.equal(second.headers.get('idempotent-replayed'), 'true');
  t.equal((await sys.pool.query('SELECT count(*)::int AS n FROM webhook_endpoints WHERE url = $1', [body.url])).rows[0].n, 1, 'one endpoint');
});

t.test('rotating a secret: a new one, the previous kept until the overlap ends', async (t) => {
  const created = await as(ada.key, 'POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/rotate', events: ['sale.created'] });
  const rotated = await as(ada.key, 'POST', `/v1/webhooks/${created.body.id}/rotate-secret`);
  t.equal(rotated.status, 200);
  t.not(rotated.body.secret, created.body.secret, 'a new secret');
  t.match(rotated.body.secret, /^whsec_/);
  const overlap = Date.parse(rotated.body.previousSecretExpiresAt) - Date.parse(rotated.body.updatedAt);
  t.equal(overlap, sys.cfg.STAMPEDE_WEBHOOK_SECRET_OVERLAP_MS, 'the previous secret signs for the configured overlap (a day)');
  const { rows } = await sys.pool.query('SELECT secret, previous_secret FROM webhook_endpoints WHERE id = $1', [created.body.id]);
  t.same(rows[0], { secret: rotated.body.secret, previous_secret: created.body.secret });
});
