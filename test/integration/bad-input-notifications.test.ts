/**
 * Invariant 6 for the notification routes: bad input never crashes, never
 * yields a 5xx, never changes an inbox or preferences, and always gets a
 * precise problem+json error.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, type HttpAnswer } from '../helpers/system.js';
import { rawRequest } from '../helpers/bad-raw-http.js';
import { badCredentials, problem, refusesEach } from '../helpers/problem.js';
import { createAuction } from '../helpers/auctions.js';
import { insertNotifications } from '../../src/notifications/repository.js';
import { UnsubscribeLinks, unsubscribeLinksOf } from '../../src/notifications/unsubscribe.js';
import { SseClient } from '../helpers/sse-client.js';

const sys = await boot(t, { worker: false });
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const [buyer, other] = await sys.createBuyers(2);
const token = sys.token(buyer!);
const lot = await createAuction(sys.pool, sys.redis);
const told = await insertNotifications(sys.pool, [buyer!, other!].map((b) => ({
  eventId: `${lot.id}:lost:${b}`, recipientId: b, type: 'auction.lost' as const, title: 'Test lot went to another bidder', body: 'It sold.', data: { auctionId: lot.id },
})));
const othersId = `ntf_${told.find((n) => n.recipientId === other)!.seq}`;
const ownId = `ntf_${told.find((n) => n.recipientId === buyer)!.seq}`;
const { badAuthorizations } = badCredentials(sys.cfg.STAMPEDE_JWT_SECRET, buyer!, other!, lot.id);

async function snapshot(): Promise<unknown> {
  const { rows: inbox } = await sys.pool.query('SELECT seq, recipient_id, read_at FROM notifications WHERE recipient_id = ANY($1) ORDER BY seq', [[buyer, other]]);
  const { rows: opened } = await sys.pool.query('SELECT buyer_id, opened_at FROM notification_inboxes WHERE buyer_id = ANY($1) ORDER BY buyer_id', [[buyer, other]]);
  const { rows: preferences } = await sys.pool.query('SELECT * FROM notification_preferences WHERE buyer_id = ANY($1) ORDER BY buyer_id', [[buyer, other]]);
  return { inbox, opened, preferences };
}

async function unchanged(t: Test, bad: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'nothing changed: read marks, last opened, preferences');
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'still up');
  t.equal((await send('GET', '/v1/notification-preferences')).status, 200, 'preferences still answer');
}

const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body });

const ACTIONS = ['/v1/notifications/opened', '/v1/notifications/read', `/v1/notifications/${ownId}/read`];

t.test('GET /v1/notifications: limit and before', async (t) => {
  await unchanged(t, async () => {
    for (const limit of ['0', '101', 'abc', '-1', '1.5', '1e2', '', '0x10', '5000']) {
      problem(t, await send('GET', `/v1/notifications?limit=${limit}`), 400, 'VALIDATION_FAILED', `limit ${JSON.stringify(limit)}`, 'query:limit');
    }
    for (const before of ['x', 'ntf_', 'ntf_0', 'ntf_01', 'ntf_abc', 'ntf_1x', 'NTF_1', `${'ntf_'}${'9'.repeat(17)}`, `ntf_${'9'.repeat(16)}`, lot.id, '']) {
      problem(t, await send('GET', `/v1/notifications?before=${encodeURIComponent(before)}`), 400, 'VALIDATION_FAILED', `before ${JSON.stringify(before)}`, 'query:before');
    }
  });
  const ok = await send('GET', `/v1/notifications?before=${othersId}`);
  t.equal(ok.status, 200, "another buyer's id as a cursor is only a position");
  t.ok(ok.body.items.every((n: { id: string }) => n.id !== othersId), 'and shows nothing of theirs');
});

t.test('every route: authentication', async (t) => {
  await unchanged(t, async () => {
    const routes = [['GET', '/v1/notifications'], ['GET', '/v1/notifications/stream'], ['GET', '/v1/notification-preferences'], ['PUT', '/v1/notification-preferences'], ...ACTIONS.map((p) => ['POST', p])] as const;
    for (const [method, path] of routes) {
      await refusesEach(t, badAuthorizations, (headers) => call(`${sys.url}${path}`, { method, headers }), `${method} ${path}`);
    }
  });
});

t.test('POST actions: bodies', async (t) => {
  await unchanged(t, async () => {
    for (const path of ACTIONS) {
      for (const raw of ['{', '{"a":1,}', 'NaN', '   ']) problem(t, await send('POST', path, raw), 400, 'MALFORMED_JSON', `${path} body ${JSON.stringify(raw)}`);
      for (const raw of ['[]', '"x"', 'null', '1', 'true']) problem(t, await send('POST', path, raw), 400, 'VALIDATION_FAILED', `${path} non-object ${raw}`, '/');
      problem(t, await send('POST', path, '{"all":true}'), 400, 'VALIDATION_FAILED', `${path} with a field`, '/all');
      problem(t, await send('POST', path, '{"recipientId":"' + other + '"}'), 400, 'VALIDATION_FAILED', `${path} naming another buyer`, '/recipientId');
      problem(t, await send('POST', path, '{}', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', `${path} as text/plain`);
      const big = `{"pad":"${'a'.repeat(MAX_BODY)}"}`;
      const head = [`POST ${path} HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${token}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(big)}`].join('\r\n');
      problem(t, await rawRequest(sys.api!.port, { head, chunks: [big] }), 413, 'PAYLOAD_TOO_LARGE', `${path} with a body over the limit`);
    }
  });
});

t.test('POST /v1/notifications/{id}/read: malformed, unknown and foreign ids', async (t) => {
  await unchanged(t, async () => {
    problem(t, await send('POST', `/v1/notifications/${othersId}/read`), 404, 'NOT_FOUND', "another buyer's notification");
    for (const id of ['nope', 'ntf_', 'ntf_0', 'ntf_01', 'ntf_1x', `ntf_${'9'.repeat(17)}`, `ntf_${'9'.repeat(16)}`, 'ntf_999999999', lot.id, '%00']) {
      problem(t, await send('POST', `/v1/notifications/${id}/read`), 404, 'NOT_FOUND', `id ${JSON.stringify(id)}`);
    }
  });
});

t.test('PUT /v1/notification-preferences: documents', async (t) => {
  // A document of the buyer's own first, so a refused one must leave it as it is.
  t.equal((await send('PUT', '/v1/notification-preferences', JSON.stringify({ channels: { sms: false }, timeZone: 'Europe/Paris' }))).status, 200);
  const put = (doc: unknown) => send('PUT', '/v1/notification-preferences', typeof doc === 'string' ? doc : JSON.stringify(doc));
  await unchanged(t, async () => {
    for (const raw of ['{', '{"channels":{},}', 'NaN']) problem(t, await put(raw), 400, 'MALFORMED_JSON', `body ${JSON.stringify(raw)}`);
    for (const raw of ['[]', '"x"', 'null', '1']) problem(t, await put(raw), 400, 'VALIDATION_FAILED', `non-object ${raw}`, '/');
    problem(t, await send('PUT', '/v1/notification-preferences'), 400, 'VALIDATION_FAILED', 'no body', '/');
    const cases: [string, unknown, string][] = [
      ['an unknown field', { channel: {} }, '/channel'],
      ['an unknown channel', { channels: { pigeon: true } }, '/channels/pigeon'],
      ['a channel switch as a string', { channels: { email: 'false' } }, '/channels/email'],
      ['a channel switch as null', { channels: { email: null } }, '/channels/email'],
      ['channels as a list', { channels: ['email'] }, '/channels'],
      ['an unknown type', { types: { 'auction.teleported': { email: false } } }, '/types/auction.teleported'],
      ['an unknown channel of a type', { types: { 'auction.outbid': { fax: false } } }, '/types/auction.outbid/fax'],
      ['a type switch as a number', { types: { 'auction.outbid': { email: 0 } } }, '/types/auction.outbid/email'],
      ['a type as a boolean', { types: { 'auction.outbid': false } }, '/types/auction.outbid'],
      ['a critical in_app off', { types: { 'purchase.failed': { in_app: false } } }, '/types/purchase.failed/in_app'],
      ['an e-mail without @', { email: 'nope' }, '/email'],
      ['an e-mail with a space', { email: 'a b@example.test' }, '/email'],
      ['an e-mail too long', { email: `${'a'.repeat(320)}@example.test` }, '/email'],
      ['a national phone number', { phone: '0612345678' }, '/phone'],
      ['a phone starting +0', { phone: '+0612345678' }, '/phone'],
      ['a phone of 16 digits', { phone: '+1234567890123456' }, '/phone'],
      ['a phone with spaces', { phone: '+33 6 12 34 56 78' }, '/phone'],
      ['a phone as a number', { phone: 33612345678 }, '/phone'],
      ['an unknown time zone', { timeZone: 'Mars/Olympus_Mons' }, '/timeZone'],
      ['an empty time zone', { timeZone: '' }, '/timeZone'],
      ['quiet hours without a time zone', { quietHours: { start: '22:00', end: '07:00' } }, '/timeZone'],
      ['quiet hours at 24:00', { timeZone: 'UTC', quietHours: { start: '24:00', end: '07:00' } }, '/quietHours/start'],
      ['quiet hours as 7:00', { timeZone: 'UTC', quietHours: { start: '22:00', end: '7:00' } }, '/quietHours/end'],
      ['quiet hours without an end', { timeZone: 'UTC', quietHours: { start: '22:00' } }, '/quietHours/end'],
      ['quiet hours with seconds', { timeZone: 'UTC', quietHours: { start: '22:00:00', end: '07:00' } }, '/quietHours/start'],
      ['quiet hours of no length', { timeZone: 'UTC', quietHours: { start: '07:00', end: '07:00' } }, '/quietHours/end'],
      ['quiet hours with a field', { timeZone: 'UTC', quietHours: { start: '22:00', end: '07:00', days: [] } }, '/quietHours/days'],
      ['a U+0000 in the e-mail', { email: 'a\u0000@example.test' }, '/email'],
    ];
    for (const [what, doc, path] of cases) problem(t, await put(doc), 400, 'VALIDATION_FAILED', what, path);
    problem(t, await send('PUT', '/v1/notification-preferences', '{}', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'as text/plain');
  });
  t.match((await send('GET', '/v1/notification-preferences')).body, { channels: { sms: false }, timeZone: 'Europe/Paris' }, 'the stored document is intact');
});

t.test('POST /v1/notifications/unsubscribe: tokens', async (t) => {
  const links = unsubscribeLinksOf(sys.cfg);
  const good = links.token(buyer!, 'auction.outbid');
  const [payload, signature] = good.split('.') as [string, string];
  const signedFor = (text: string) => `${Buffer.from(text).toString('base64url')}.${signature}`;
  const otherKey = new UnsubscribeLinks('another-secret-that-is-long-enough-0123456789', sys.cfg.STAMPEDE_PUBLIC_URL);
  await unchanged(t, async () => {
    const tokens: [string, string | undefined][] = [
      ['no token', undefined], ['an empty token', ''], ['garbage', 'garbage'], ['a payload only', payload], ['a signature only', `.${signature}`],
      ['a signature of another buyer', signedFor(`${other}:auction.outbid`)], ['another type under the signature', signedFor(`${buyer}:auction.won`)],
      ['signed with another secret', otherKey.token(buyer!, 'auction.outbid')], ['a truncated signature', good.slice(0, -1)],
      ['a bearer token', token], ['a token of 5000 characters', 'a'.repeat(5000)],
    ];
    for (const [what, value] of tokens) {
      const query = value === undefined ? '' : `?token=${encodeURIComponent(value)}`;
      problem(t, await call(`${sys.url}/v1/notifications/unsubscribe${query}`, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
        400, 'VALIDATION_FAILED', what, 'query:token');
    }
  });
});

t.test('GET /v1/notifications/stream: Last-Event-ID', async (t) => {
  await unchanged(t, async () => {
    for (const id of ['x', 'ntf_', 'ntf_0', 'ntf_01', 'ntf_abc', 'ntf_1x', 'NTF_1', `${ownId},${ownId}`, `ntf_${'9'.repeat(17)}`, lot.id, buyer!]) {
      problem(t, await send('GET', '/v1/notifications/stream', undefined, { 'last-event-id': id }), 400, 'VALIDATION_FAILED', `Last-Event-ID ${JSON.stringify(id)}`, 'header:Last-Event-ID');
    }
  });
  t.equal(sys.api!.eventStreams.count, 0, 'no stream was opened');
  const positioned = await SseClient.connect(`${sys.url}/v1/notifications/stream`, { authorization: `Bearer ${token}`, 'last-event-id': othersId });
  t.equal(positioned.status, 200, "another buyer's id is only a position");
  await positioned.waitUntil('the stream to open', () => positioned.comments >= 1);
  positioned.close();
  t.same(positioned.unread(), [], "and sends nothing of theirs");
});
