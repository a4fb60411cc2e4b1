/**
 * Invariant 6 for `/v1/sellers/{id}/keys`: bad input never crashes, never
 * yields a 5xx, never creates or revokes a key, and always gets a precise
 * problem+json error.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, OPERATOR_KEY, type HttpAnswer } from '../helpers/system.js';
import { badApiKeys, keysUnchanged, problem, refusesEach } from '../helpers/problem.js';
import { newUserId } from '../../src/platform/ids.js';

const sys = await boot(t, { worker: false });
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const [buyer] = await sys.createBuyers(1);
const token = sys.token(buyer!);
const shop = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Shop' }) })).body as { id: string; apiKey: string };
const rival = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Rival' }) })).body as { id: string; apiKey: string };
const PATH = `/v1/sellers/${shop.id}/keys`;

const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': shop.apiKey, 'content-type': 'application/json', ...headers }, body });
const post = (body: unknown, headers: Record<string, string> = {}) => send('POST', PATH, typeof body === 'string' ? body : JSON.stringify(body), headers);

const unchanged = (t: Test, bad: () => Promise<void>) => keysUnchanged(t, sys, bad);

t.test('POST /v1/sellers/{id}/keys: the body, precisely', async (t) => {
  await unchanged(t, async () => {
    const cases: [string, unknown, string][] = [
      ['no fields', {}, '/label'],
      ['label empty', { label: '' }, '/label'],
      ['label too long', { label: 'l'.repeat(201) }, '/label'],
      ['label not a string', { label: 7 }, '/label'],
      ['label null', { label: null }, '/label'],
      ['label with U+0000', { label: 'a\u0000b' }, '/label'],
      ['a role (always seller here)', { label: 'x', role: 'operator' }, '/role'],
      ['a userId (the path names it)', { label: 'x', userId: rival.id }, '/userId'],
    ];
    for (const [what, body, path] of cases) problem(t, await post(body), 400, 'VALIDATION_FAILED', what, path);
    problem(t, await post('{"label":'), 400, 'MALFORMED_JSON', 'broken JSON');
    problem(t, await post('[]'), 400, 'VALIDATION_FAILED', 'an array', '/');
    problem(t, await post('null'), 400, 'VALIDATION_FAILED', 'null', '/');
    problem(t, await send('POST', PATH), 400, 'VALIDATION_FAILED', 'no body', '/');
    problem(t, await send('POST', PATH, JSON.stringify({ label: 'x' }), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'not JSON');
    problem(t, await post({ label: 'x'.repeat(MAX_BODY) }), 413, 'PAYLOAD_TOO_LARGE', 'past the body limit');
    problem(t, await post({ label: 'x' }, { 'idempotency-key': 'a b' }), 400, 'VALIDATION_FAILED', 'a bad Idempotency-Key', 'header:Idempotency-Key');
  });
});

t.test('seller ids, key ids and paging', async (t) => {
  await unchanged(t, async () => {
    for (const id of ['usr_', 'USR_000000000000', 'sal_000000000000', 'xyz', `${shop.id}x`, newUserId(), buyer!]) {
      for (const [method, path, body] of [['GET', `/v1/sellers/${id}/keys`], ['POST', `/v1/sellers/${id}/keys`, '{"label":"x"}'], ['DELETE', `/v1/sellers/${id}/keys/key_000000000000`]] as const) {
        problem(t, await send(method, path, body, { 'x-api-key': OPERATOR_KEY }), 404, 'NOT_FOUND', `${method} for seller ${id}`);
      }
    }
    for (const keyId of ['key_000000000000', 'key_', 'KEY_000000000000', 'xyz', 'key_0000000000000', 'usr_000000000000']) {
      problem(t, await send('DELETE', `${PATH}/${keyId}`), 404, 'NOT_FOUND', `DELETE key ${keyId}`);
    }
    for (const limit of ['0', '101', '-1', '1.5', 'ten', '']) {
      problem(t, await send('GET', `${PATH}?limit=${limit}`), 400, 'VALIDATION_FAILED', `limit=${limit}`, 'query:limit');
    }
    for (const after of ['key_', 'sal_000000000000', 'key_000000000000']) {
      problem(t, await send('GET', `${PATH}?after=${after}`), 400, 'VALIDATION_FAILED', `after=${after}`, 'query:after');
    }
  });
});

t.test('who may call: the seller\'s own key or an operator\'s', async (t) => {
  const rivalKey = (await sys.operator(`/v1/sellers/${rival.id}/keys`)).body.items[0].id as string;
  const routes: [string, string, string | undefined][] = [
    ['POST', PATH, '{"label":"x"}'],
    ['GET', PATH, undefined],
    ['DELETE', `${PATH}/key_000000000000`, undefined],
  ];
  await unchanged(t, async () => {
    for (const [method, path, body] of routes) {
      await refusesEach(t, badApiKeys(OPERATOR_KEY, token), (headers) => call(`${sys.url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body }), `${method} ${path}`);
      problem(t, await send(method, path, body, { 'x-api-key': rival.apiKey }), 404, 'NOT_FOUND', `${method} with another seller's key`);
    }
    problem(t, await send('DELETE', `/v1/sellers/${rival.id}/keys/${rivalKey}`), 404, 'NOT_FOUND', 'revoking another seller\'s key');
  });
});

t.test('Idempotency-Key: the same key with another body is a 422 and makes nothing', async (t) => {
  const key = `sk-${Date.now()}`;
  t.equal((await post({ label: 'once' }, { 'idempotency-key': key })).status, 201);
  await unchanged(t, async () => {
    problem(t, await post({ label: 'another' }, { 'idempotency-key': key }), 422, 'IDEMPOTENCY_KEY_REUSED', 'the key with another body');
  });
});
