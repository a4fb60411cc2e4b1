/**
 * Invariant 6 for the operators' keys API: bad input never crashes, never
 * yields a 5xx, never creates or revokes a key, and always gets a precise
 * problem+json error.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, OPERATOR_KEY, type HttpAnswer } from '../helpers/system.js';
import { badApiKeys, keysUnchanged, problem, refusesEach } from '../helpers/problem.js';
import { ApiKeys } from '../../src/platform/auth/api-keys.js';
import { newUserId } from '../../src/platform/ids.js';

const sys = await boot(t, { worker: false });
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const [buyer] = await sys.createBuyers(1);
const token = sys.token(buyer!);
const seller = newUserId();
await sys.pool.query("INSERT INTO users (id, kind, name) VALUES ($1, 'seller', 'a seller')", [seller]);
const sellerKey = `seller-key-${Date.now()}`;
await new ApiKeys(sys.pool).store(sellerKey, 'seller', seller, 'bad-input test seller');

const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': OPERATOR_KEY, 'content-type': 'application/json', ...headers }, body });
const post = (body: unknown, headers: Record<string, string> = {}) => send('POST', '/v1/ops/keys', typeof body === 'string' ? body : JSON.stringify(body), headers);

const unchanged = (t: Test, bad: () => Promise<void>) => keysUnchanged(t, sys, bad);

const good = { role: 'operator', label: 'a good key' };

t.test('POST /v1/ops/keys: every field, precisely', async (t) => {
  await unchanged(t, async () => {
    const cases: [string, unknown, string][] = [
      ['no fields', {}, '/role'],
      ['no role', { label: 'x' }, '/role'],
      ['no label', { role: 'operator' }, '/label'],
      ['an unknown member', { ...good, scopes: ['all'] }, '/scopes'],
      ['an unknown role', { ...good, role: 'admin' }, '/role'],
      ['role upper-cased', { ...good, role: 'OPERATOR' }, '/role'],
      ['role not a string', { ...good, role: 1 }, '/role'],
      ['label empty', { ...good, label: '' }, '/label'],
      ['label too long', { ...good, label: 'l'.repeat(201) }, '/label'],
      ['label not a string', { ...good, label: 7 }, '/label'],
      ['label with U+0000', { ...good, label: 'a\u0000b' }, '/label'],
      ['an operator key with a user', { ...good, userId: seller }, '/userId'],
      ['userId null', { ...good, userId: null }, '/userId'],
      ['a seller key without a user', { role: 'seller', label: 'x' }, '/userId'],
      ['a seller key for a buyer', { role: 'seller', userId: buyer, label: 'x' }, '/userId'],
      ['a seller key for nobody', { role: 'seller', userId: newUserId(), label: 'x' }, '/userId'],
      ['userId not an id', { role: 'seller', userId: 'bob', label: 'x' }, '/userId'],
      ['userId not a string', { role: 'seller', userId: 42, label: 'x' }, '/userId'],
    ];
    for (const [what, body, path] of cases) problem(t, await post(body), 400, 'VALIDATION_FAILED', what, path);
    problem(t, await post('{"role":'), 400, 'MALFORMED_JSON', 'broken JSON');
    problem(t, await post('[]'), 400, 'VALIDATION_FAILED', 'an array', '/');
    problem(t, await post('null'), 400, 'VALIDATION_FAILED', 'null', '/');
    problem(t, await send('POST', '/v1/ops/keys'), 400, 'VALIDATION_FAILED', 'no body', '/');
    problem(t, await send('POST', '/v1/ops/keys', JSON.stringify(good), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'not JSON');
    problem(t, await post({ ...good, label: 'x'.repeat(MAX_BODY) }), 413, 'PAYLOAD_TOO_LARGE', 'past the body limit');
    problem(t, await post(good, { 'idempotency-key': 'a b' }), 400, 'VALIDATION_FAILED', 'a bad Idempotency-Key', 'header:Idempotency-Key');
    problem(t, await post(good, { 'idempotency-key': 'k'.repeat(201) }), 400, 'VALIDATION_FAILED', 'a long Idempotency-Key', 'header:Idempotency-Key');
  });
});

t.test('GET /v1/ops/keys: paging, precisely', async (t) => {
  await unchanged(t, async () => {
    for (const limit of ['0', '101', '-1', '1.5', 'ten', '', '0100', '1e2']) {
      problem(t, await send('GET', `/v1/ops/keys?limit=${limit}`), 400, 'VALIDATION_FAILED', `limit=${limit}`, 'query:limit');
    }
    for (const after of ['key_', 'KEY_000000000000', 'sal_000000000000', 'key_000000000000x', "key_0000000000'0", 'key_000000000000']) {
      problem(t, await send('GET', `/v1/ops/keys?after=${encodeURIComponent(after)}`), 400, 'VALIDATION_FAILED', `after=${after}`, 'query:after');
    }
  });
  t.equal((await send('GET', '/v1/ops/keys?limit=100')).status, 200, 'a good page still answers');
});

t.test('DELETE /v1/ops/keys/{id}: unknown and malformed ids are 404', async (t) => {
  await unchanged(t, async () => {
    for (const id of ['key_000000000000', 'key_', 'KEY_000000000000', 'xyz', 'key_0000000000000', 'key_00000000000%2F', 'usr_000000000000']) {
      problem(t, await send('DELETE', `/v1/ops/keys/${id}`), 404, 'NOT_FOUND', `DELETE ${id}`);
    }
  });
});

t.test('who may call: an operator key only', async (t) => {
  const routes: [string, string, string | undefined][] = [
    ['POST', '/v1/ops/keys', JSON.stringify(good)],
    ['GET', '/v1/ops/keys', undefined],
    ['DELETE', '/v1/ops/keys/key_000000000000', undefined],
  ];
  const { rows } = await sys.pool.query("SELECT id FROM api_keys WHERE role = 'seller' AND user_id = $1", [seller]);
  await unchanged(t, async () => {
    for (const [method, path, body] of routes) {
      await refusesEach(t, badApiKeys(OPERATOR_KEY, token), (headers) => call(`${sys.url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body }), `${method} ${path}`);
      problem(t, await send(method, path, body, { 'x-api-key': sellerKey }), 403, 'FORBIDDEN', `${method} with a seller key`);
    }
    problem(t, await send('DELETE', `/v1/ops/keys/${rows[0].id}`, undefined, { 'x-api-key': sellerKey }), 403, 'FORBIDDEN', 'a seller revoking its own key');
  });
});

t.test('Idempotency-Key: the same key with another body is a 422 and makes nothing', async (t) => {
  const key = `keys-${Date.now()}`;
  t.equal((await post(good, { 'idempotency-key': key })).status, 201);
  await unchanged(t, async () => {
    problem(t, await post({ ...good, label: 'another' }, { 'idempotency-key': key }), 422, 'IDEMPOTENCY_KEY_REUSED', 'the key with another body');
  });
});
