/**
 * Invariant 6 for the operators' notifications API: bad input never crashes,
 * never yields a 5xx, never records, sends or cancels anything, and always
 * gets a precise problem+json error.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, OPERATOR_KEY, type HttpAnswer } from '../helpers/system.js';
import { problem } from '../helpers/problem.js';
import { NOTIFICATION_SENDS_DUE } from '../../src/notifications/keys.js';
import { ApiKeys } from '../../src/platform/auth/api-keys.js';
import { newUserId } from '../../src/platform/ids.js';

const sys = await boot(t, { worker: false });
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const [buyer] = await sys.createBuyers(1);
const sellerKey = `seller-key-${Date.now()}`;
const seller = newUserId();
await sys.pool.query("INSERT INTO users (id, kind, name) VALUES ($1, 'seller', 'a seller')", [seller]);
await new ApiKeys(sys.pool).store(sellerKey, 'seller', seller, 'bad-input test seller');
const [deleted] = await sys.createBuyers(1);
await sys.pool.query('UPDATE users SET deleted_at = now() WHERE id = $1', [deleted]);

const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': OPERATOR_KEY, 'content-type': 'application/json', ...headers }, body });
const post = (body: unknown, headers: Record<string, string> = {}) => send('POST', '/v1/ops/notifications', typeof body === 'string' ? body : JSON.stringify(body), headers);

async function snapshot(): Promise<unknown> {
  const { rows } = await sys.pool.query('SELECT id, status, send_at, cancelled_at FROM notification_sends ORDER BY id');
  const { rows: inbox } = await sys.pool.query('SELECT count(*)::int AS n FROM notifications');
  return { sends: rows, inbox, due: await sys.redis.zrange(NOTIFICATION_SENDS_DUE, 0, -1, 'WITHSCORES') };
}

async function unchanged(t: Test, bad: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'nothing recorded, indexed or cancelled');
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'still up');
}

const good = { audience: { buyerIds: [buyer] }, title: 'Hello', body: 'A word from the house.' };
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

t.test('POST /v1/ops/notifications: every field, precisely', async (t) => {
  await unchanged(t, async () => {
    const cases: [string, unknown, string][] = [
      ['no body fields', {}, '/audience'],
      ['no title', { ...good, title: undefined }, '/title'],
      ['no body', { ...good, body: undefined }, '/body'],
      ['an unknown member', { ...good, priority: 'high' }, '/priority'],
      ['audience not an object', { ...good, audience: 'everyone' }, '/audience'],
      ['audience empty', { ...good, audience: {} }, '/audience'],
      ['audience with both', { ...good, audience: { buyerIds: [buyer], collection: 'art' } }, '/audience'],
      ['audience with an unknown member', { ...good, audience: { everyone: true } }, '/audience/everyone'],
      ['buyerIds empty', { ...good, audience: { buyerIds: [] } }, '/audience/buyerIds'],
      ['buyerIds not ids', { ...good, audience: { buyerIds: ['bob'] } }, '/audience/buyerIds/0'],
      ['buyerIds not strings', { ...good, audience: { buyerIds: [42] } }, '/audience/buyerIds/0'],
      ['buyerIds repeated', { ...good, audience: { buyerIds: [buyer, buyer] } }, '/audience/buyerIds'],
      ['buyerIds past the cap', { ...good, audience: { buyerIds: Array.from({ length: 501 }, () => newUserId()) } }, '/audience/buyerIds'],
      ['buyerIds naming nobody', { ...good, audience: { buyerIds: [buyer, newUserId()] } }, '/audience/buyerIds/1'],
      ['a seller is not a buyer', { ...good, audience: { buyerIds: [buyer, seller] } }, '/audience/buyerIds/1'],
      ['a deleted buyer', { ...good, audience: { buyerIds: [deleted, buyer] } }, '/audience/buyerIds/0'],
      ['collection empty', { ...good, audience: { collection: '' } }, '/audience/collection'],
      ['collection too long', { ...good, audience: { collection: 'c'.repeat(201) } }, '/audience/collection'],
      ['collection not a string', { ...good, audience: { collection: ['art'] } }, '/audience/collection'],
      ['title empty', { ...good, title: '' }, '/title'],
      ['title too long', { ...good, title: 't'.repeat(301) }, '/title'],
      ['title with U+0000', { ...good, title: 'a\u0000b' }, '/title'],
      ['body empty', { ...good, body: '' }, '/body'],
      ['body too long', { ...good, body: 'b'.repeat(2001) }, '/body'],
      ['body not a string', { ...good, body: 7 }, '/body'],
      ['channels empty', { ...good, channels: [] }, '/channels'],
      ['channels unknown', { ...good, channels: ['pigeon'] }, '/channels/0'],
      ['channels repeated', { ...good, channels: ['email', 'email'] }, '/channels'],
      ['channels not a list', { ...good, channels: 'email' }, '/channels'],
      ['sendAt not a date-time', { ...good, sendAt: 'tomorrow' }, '/sendAt'],
      ['sendAt without a zone', { ...good, sendAt: '2030-01-01T10:00:00' }, '/sendAt'],
      ['sendAt not a real day', { ...good, sendAt: '2030-02-30T10:00:00Z' }, '/sendAt'],
      ['sendAt a number', { ...good, sendAt: Date.now() + 60_000 }, '/sendAt'],
      ['sendAt in the past', { ...good, sendAt: new Date(Date.now() - 60_000).toISOString() }, '/sendAt'],
      ['sendAt past the horizon', { ...good, sendAt: new Date(Date.now() + 91 * 86_400_000).toISOString() }, '/sendAt'],
    ];
    for (const [what, body, path] of cases) problem(t, await post(body), 400, 'VALIDATION_FAILED', what, path);
    problem(t, await post('{"audience":'), 400, 'MALFORMED_JSON', 'broken JSON');
    problem(t, await post('[]'), 400, 'VALIDATION_FAILED', 'an array', '/');
    problem(t, await post('null'), 400, 'VALIDATION_FAILED', 'null', '/');
    problem(t, await send('POST', '/v1/ops/notifications', JSON.stringify(good), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'not JSON');
    problem(t, await post({ ...good, body: 'x'.repeat(MAX_BODY) }), 413, 'PAYLOAD_TOO_LARGE', 'past the body limit');
    problem(t, await post(good, { 'idempotency-key': 'a b' }), 400, 'VALIDATION_FAILED', 'a bad Idempotency-Key', 'header:Idempotency-Key');
    problem(t, await post(good, { 'idempotency-key': 'k'.repeat(201) }), 400, 'VALIDATION_FAILED', 'a long Idempotency-Key', 'header:Idempotency-Key');
  });
});

t.test('who may call: an operator key only', async (t) => {
  await unchanged(t, async () => {
    for (const [method, path] of [['POST', '/v1/ops/notifications'], ['GET', '/v1/ops/notifications/ann_000000000000'], ['DELETE', '/v1/ops/notifications/ann_000000000000']] as const) {
      const body = method === 'POST' ? JSON.stringify(good) : undefined;
      problem(t, await call(`${sys.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body }), 401, 'UNAUTHORIZED', `${method} without a key`);
      problem(t, await send(method, path, body, { 'x-api-key': 'not-a-key' }), 401, 'UNAUTHORIZED', `${method} with an unknown key`);
      problem(t, await send(method, path, body, { 'x-api-key': sellerKey }), 403, 'FORBIDDEN', `${method} with a seller key`);
      problem(t, await call(`${sys.url}${path}`, { method, headers: { authorization: `Bearer ${sys.token(buyer!)}`, 'content-type': 'application/json' }, body }), 401, 'UNAUTHORIZED', `${method} as a buyer`);
    }
  });
});

t.test('GET and DELETE: unknown and malformed ids are 404; a started or sent one cannot be cancelled', async (t) => {
  const scheduled = await post({ ...good, sendAt: inAnHour() });
  t.equal(scheduled.status, 202);
  await unchanged(t, async () => {
    for (const id of ['ann_000000000000', 'sop_000000000000', 'ann_', 'ANN_000000000000', 'xyz', `${scheduled.body.id}x`, 'ann_00000000000%2F']) {
      problem(t, await send('GET', `/v1/ops/notifications/${id}`), 404, 'NOT_FOUND', `GET ${id}`);
      problem(t, await send('DELETE', `/v1/ops/notifications/${id}`), 404, 'NOT_FOUND', `DELETE ${id}`);
    }
  });
  for (const status of ['sending', 'sent']) {
    const other = await post({ ...good, sendAt: inAnHour() });
    await sys.pool.query('UPDATE notification_sends SET status = $2 WHERE id = $1', [other.body.id, status]);
    await unchanged(t, async () => {
      const refused = await send('DELETE', `/v1/ops/notifications/${other.body.id}`);
      problem(t, refused, 409, 'CONFLICT', `DELETE of one ${status}`);
      t.equal(refused.body.notificationStatus, status, 'the problem says what it is');
    });
  }
  t.equal((await send('DELETE', `/v1/ops/notifications/${scheduled.body.id}`)).status, 204, 'the scheduled one is cancelled');
  t.equal((await send('DELETE', `/v1/ops/notifications/${scheduled.body.id}`)).status, 204, 'and cancelling it again is no error');
  t.equal((await send('GET', `/v1/ops/notifications/${scheduled.body.id}`)).body.status, 'cancelled');
});

t.test('Idempotency-Key: the same key and body replays the first answer; another body is a 422', async (t) => {
  const key = `ann-${Date.now()}`;
  const body = { ...good, sendAt: inAnHour() };
  const first = await post(body, { 'idempotency-key': key });
  t.equal(first.status, 202);
  const again = await post(body, { 'idempotency-key': key });
  t.equal(again.status, 202);
  t.equal(again.headers.get('idempotent-replayed'), 'true');
  t.equal(again.body.id, first.body.id, 'the same announcement');
  await unchanged(t, async () => {
    problem(t, await post({ ...body, title: 'Other' }, { 'idempotency-key': key }), 422, 'IDEMPOTENCY_KEY_REUSED', 'the key with another body');
  });
  const { rows } = await sys.pool.query('SELECT count(*)::int AS n FROM notification_sends WHERE id = $1', [first.body.id]);
  t.equal(rows[0].n, 1, 'recorded once');
});
