/**
 * Invariant 6 for the webhooks API: bad input on every route never
 * crashes, never yields a 5xx, never creates, changes or deletes an
 * endpoint or a delivery, and always gets a precise problem+json error.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, OPERATOR_KEY, type HttpAnswer } from '../helpers/system.js';
import { badApiKeys, problem, refusesEach } from '../helpers/problem.js';
import { newSeller } from '../helpers/webhooks.js';

const sys = await boot(t, { env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } });
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const [buyer] = await sys.createBuyers(1);
const token = sys.token(buyer!);
const seller = await newSeller(sys);
const created = await call(`${sys.url}/v1/webhooks`, {
  method: 'POST', headers: { 'x-api-key': seller.key, 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://127.0.0.1:9/x', events: ['sale.created'] }),
});
const id = created.body.id as string;

const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': seller.key, 'content-type': 'application/json', ...headers }, body });
const json = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  send(method, path, typeof body === 'string' ? body : JSON.stringify(body), headers);

async function unchanged(t: Test, bad: () => Promise<void>): Promise<void> {
  const snapshot = async () => ({
    endpoints: (await sys.pool.query('SELECT * FROM webhook_endpoints ORDER BY id')).rows,
    deliveries: (await sys.pool.query('SELECT * FROM webhook_deliveries ORDER BY id')).rows,
  });
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'nothing created, changed or deleted');
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'still up');
}

const good = { url: 'http://127.0.0.1:9/hook', events: ['purchase.confirmed'] };

t.test('POST /v1/webhooks: every field, precisely', async (t) => {
  await unchanged(t, async () => {
    const cases: [string, unknown, string][] = [
      ['no fields', {}, '/url'],
      ['no events', { url: good.url }, '/events'],
      ['no url', { events: good.events }, '/url'],
      ['an unknown member', { ...good, secret: 'mine' }, '/secret'],
      ['url not a string', { ...good, url: 7 }, '/url'],
      ['url empty', { ...good, url: '' }, '/url'],
      ['url too long', { ...good, url: `http://127.0.0.1/${'a'.repeat(2048)}` }, '/url'],
      ['url not a URL', { ...good, url: 'not a url' }, '/url'],
      ['url ftp', { ...good, url: 'ftp://127.0.0.1/x' }, '/url'],
      ['url with credentials', { ...good, url: 'http://u:p@127.0.0.1/x' }, '/url'],
      ['url with a fragment', { ...good, url: 'http://127.0.0.1/x#y' }, '/url'],
      ['url with U+0000', { ...good, url: 'http://127.0.0.1/\u0000' }, '/url'],
      ['events empty', { ...good, events: [] }, '/events'],
      ['events not an array', { ...good, events: 'purchase.confirmed' }, '/events'],
      ['an unknown event', { ...good, events: ['purchase.exploded'] }, '/events/0'],
      ['an internal event', { ...good, events: ['auction.outbid'] }, '/events/0'],
      ['a versioned name', { ...good, events: ['purchase.confirmed.v1'] }, '/events/0'],
      ['an event twice', { ...good, events: ['sale.created', 'sale.created'] }, '/events'],
      ['an event not a string', { ...good, events: [1] }, '/events/0'],
      ['description too long', { ...good, description: 'd'.repeat(501) }, '/description'],
      ['description not a string', { ...good, description: 1 }, '/description'],
    ];
    for (const [what, body, path] of cases) problem(t, await json('POST', '/v1/webhooks', body), 400, 'VALIDATION_FAILED', what, path);
    problem(t, await json('POST', '/v1/webhooks', '{"url":'), 400, 'MALFORMED_JSON', 'broken JSON');
    problem(t, await json('POST', '/v1/webhooks', '[]'), 400, 'VALIDATION_FAILED', 'an array', '/');
    problem(t, await json('POST', '/v1/webhooks', 'null'), 400, 'VALIDATION_FAILED', 'null', '/');
    problem(t, await send('POST', '/v1/webhooks'), 400, 'VALIDATION_FAILED', 'no body', '/');
    problem(t, await send('POST', '/v1/webhooks', JSON.stringify(good), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'not JSON');
    problem(t, await json('POST', '/v1/webhooks', { ...good, description: 'x'.repeat(MAX_BODY) }), 413, 'PAYLOAD_TOO_LARGE', 'past the body limit');
    problem(t, await json('POST', '/v1/webhooks', good, { 'idempotency-key': 'a b' }), 400, 'VALIDATION_FAILED', 'a bad Idempotency-Key', 'header:Idempotency-Key');
    await refusesEach(t, badApiKeys(OPERATOR_KEY, token), (h) => call(`${sys.url}/v1/webhooks`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...h }, body: JSON.stringify(good),
    }));
  });
});

t.test('PATCH /v1/webhooks/{id}: every field, precisely', async (t) => {
  await unchanged(t, async () => {
    const path = `/v1/webhooks/${id}`;
    const cases: [string, unknown, string][] = [
      ['no change', {}, '/'],
      ['an unknown member', { secret: 'x' }, '/secret'],
      ['enabled not a boolean', { enabled: 'yes' }, '/enabled'],
      ['events empty', { events: [] }, '/events'],
      ['an unknown event', { events: ['x'] }, '/events/0'],
      ['url not a URL', { url: 'nope' }, '/url'],
      ['url null', { url: null }, '/url'],
    ];
    for (const [what, body, p] of cases) problem(t, await json('PATCH', path, body), 400, 'VALIDATION_FAILED', what, p);
    problem(t, await json('PATCH', path, '{'), 400, 'MALFORMED_JSON', 'broken JSON');
    problem(t, await json('PATCH', '/v1/webhooks/whk_nope', { enabled: false }), 404, 'NOT_FOUND', 'a malformed id');
    problem(t, await json('PATCH', '/v1/webhooks/whk_000000000000', { enabled: false }), 404, 'NOT_FOUND', 'an unknown id');
  });
});

t.test('the other routes: ids, queries and bodies, precisely', async (t) => {
  await unchanged(t, async () => {
    for (const bad of ['whk_', 'WHK_000000000000', 'sal_000000000000', `${id}x`, 'whk_000000000000']) {
      for (const [method, path] of [['GET', ''], ['DELETE', ''], ['POST', '/rotate-secret'], ['GET', '/deliveries']] as const) {
        problem(t, await send(method, `/v1/webhooks/${bad}${path}`), 404, 'NOT_FOUND', `${method} ${bad}${path}`);
      }
    }
    problem(t, await json('POST', `/v1/webhooks/${id}/rotate-secret`, { now: true }), 400, 'VALIDATION_FAILED', 'rotate with a body', '/now');
    for (const limit of ['0', '101', '-1', '1.5', 'ten', '']) {
      problem(t, await send('GET', `/v1/webhooks/${id}/deliveries?limit=${limit}`), 400, 'VALIDATION_FAILED', `deliveries limit=${limit}`, 'query:limit');
      problem(t, await send('GET', `/v1/webhooks?limit=${limit}`), 400, 'VALIDATION_FAILED', `endpoints limit=${limit}`, 'query:limit');
    }
    for (const status of ['FAILED', 'done', '']) {
      problem(t, await send('GET', `/v1/webhooks/${id}/deliveries?status=${status}`), 400, 'VALIDATION_FAILED', `status=${status}`, 'query:status');
    }
    for (const before of ['msg_', 'msg_x', 'whk_000000000000', "msg_0000000000000000000000'"]) {
      problem(t, await send('GET', `/v1/webhooks/${id}/deliveries?before=${encodeURIComponent(before)}`), 400, 'VALIDATION_FAILED', `before=${before}`, 'query:before');
    }
    problem(t, await send('GET', '/v1/webhooks?after=nope'), 400, 'VALIDATION_FAILED', 'after=nope', 'query:after');
    const replay = (d: string, body?: string) => send('POST', `/v1/webhooks/${id}/deliveries/${d}/replay`, body);
    problem(t, await replay('msg_nope'), 404, 'NOT_FOUND', 'replay a malformed delivery id');
    problem(t, await replay('msg_000000000000000000000000'), 404, 'NOT_FOUND', 'replay an unknown delivery');
    problem(t, await replay('msg_000000000000000000000000', '{"x":1}'), 400, 'VALIDATION_FAILED', 'replay with a body', '/x');
    const recover = (body: unknown) => json('POST', `/v1/webhooks/${id}/recover`, body);
    for (const [what, body, p] of [
      ['no since', {}, '/since'], ['since not a time', { since: 'yesterday' }, '/since'], ['since not a real date', { since: '2024-02-30T00:00:00Z' }, '/since'],
      ['since a number', { since: 1 }, '/since'], ['an unknown member', { since: '2024-01-01T00:00:00Z', all: true }, '/all'],
    ] as const) problem(t, await recover(body), 400, 'VALIDATION_FAILED', `recover: ${what}`, p);
    problem(t, await json('POST', '/v1/webhooks/whk_000000000000/recover', { since: '2024-01-01T00:00:00Z' }), 404, 'NOT_FOUND', 'recover an unknown endpoint');
    problem(t, await call(`${sys.url}/v1/event-types/nope`), 404, 'NOT_FOUND', 'an unknown event type');
    for (const [method, path] of [['GET', '/v1/webhooks'], ['GET', `/v1/webhooks/${id}`], ['DELETE', `/v1/webhooks/${id}`], ['GET', `/v1/webhooks/${id}/deliveries`]] as const) {
      await refusesEach(t, badApiKeys(OPERATOR_KEY, token), (h) => call(`${sys.url}${path}`, { method, headers: h }), `${method} ${path}`);
    }
  });
});
