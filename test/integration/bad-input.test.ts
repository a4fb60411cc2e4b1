/**
 * Invariant 6: bad input never crashes a process, never yields a 5xx, never
 * changes state, and always gets a precise error. Every case runs against a
 * real booted api (real Redis, Postgres, RabbitMQ) and checks the status, the
 * problem+json content type and the machine code; each group then proves
 * nothing changed (live counters, outbox, Redis keys, Postgres rows) and that
 * the api still serves a normal request.
 */
import { scanKeys } from '../../src/platform/redis/client.js';
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, OPERATOR_KEY, type HttpAnswer } from '../helpers/system.js';
import { chunk, rawRequest } from '../helpers/bad-raw-http.js';
import { badApiKeys, badCredentials, contentTypeOf, problem, refusesEach, type Answer } from '../helpers/problem.js';
import { readLiveSale } from '../../src/sales/scripts.js';
import { saleKeys } from '../../src/sales/keys.js';

const sys = await boot(t);
const port = sys.api!.port;
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const sale = await sys.createSale({ stock: 1000, perBuyerLimit: 5, unitPrice: 100 });
const buyers = await sys.createBuyers(24);
let nextFresh = 1;
/** A buyer that has not bought yet, for the "a normal request still works" checks. */
const freshBuyer = () => {
  if (nextFresh > 21) throw new Error('out of fresh buyers');
  return buyers[nextFresh++]!;
};
const buyer = buyers[0]!;
const token = sys.token(buyer);
const purchasesUrl = `${sys.url}/v1/sales/${sale.id}/purchases`;
const nowS = () => Math.floor(Date.now() / 1000);

// --- what "nothing changed" means --------------------------------------------
interface Snapshot {
  live: unknown;
  outbox: number;
  redisKeys: string[];
  redisHashes: Record<string, string>[];
  rows: Record<string, string>;
}

/**
 * Everything this file's requests could touch, scoped to its own sale, buyers and
 * marker names (other test runs may share the database and write meanwhile).
 */
async function snapshot(): Promise<Snapshot> {
  const { rows } = await sys.pool.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM sales WHERE name LIKE 'bad-input%' OR name = '')::text AS sales,
            (SELECT stock::text || '/' || status FROM sales WHERE id = $1) AS our_sale,
            (SELECT count(*) FROM sales WHERE id IN ('sal_zzzzzzzzzzzz', 'sal_000000000000'))::text AS unknown_sales,
            (SELECT count(*) FROM orders WHERE sale_id = $1 OR buyer_id = ANY($2))::text AS orders,
            (SELECT count(*) FROM purchase_events WHERE sale_id = $1)::text AS purchase_events,
            (SELECT count(*) FROM ledger_entries WHERE user_id = ANY($2))::text AS ledger_entries,
            (SELECT count(*) FROM users WHERE name LIKE 'bad-input%' OR name = '' OR id = 'usr_zzzzzzzzzzzz')::text AS users,
            (SELECT string_agg(user_id || ':' || currency || ':' || balance, ',' ORDER BY user_id, currency) FROM wallets WHERE user_id = ANY($2)) AS wallets`,
    [sale.id, buyers],
  );
  // Rate-limit counters expire on their own (1 s window); everything else must stay put.
  const keys: string[] = [];
  for (const id of [sale.id, 'sal_zzzzzzzzzzzz', 'sal_000000000000']) keys.push(...(await scanKeys(sys.redis, `*${id}*`)));
  // A refused purchase is counted for the operators' board (`:outcomes`, as a metric is); an unknown sale is not, so it has no keys at all.
  const redisKeys = keys.filter((k) => !k.includes(':rate:') && !k.endsWith(':outcomes')).sort();
  return {
    live: await readLiveSale(sys.redis, sale.id),
    outbox: await sys.redis.xlen(saleKeys.outbox(sale.id)),
    redisKeys,
    redisHashes: [await sys.redis.hgetall(saleKeys.bought(sale.id)), await sys.redis.hgetall(saleKeys.inflight(sale.id))],
    rows: rows[0]!,
  };
}

/** Runs `bad`, then proves state is unchanged and the api still answers. */
async function unchanged(t: Test, bad: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'nothing changed: live counters, outbox, Redis keys, Postgres rows');
  const health = await call(`${sys.url}/healthz`);
  t.equal(health.status, 200, 'GET /healthz is still 200');
}

const buy = (body: unknown, headers: Record<string, string> = {}, url = purchasesUrl) =>
  call(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
  });

async function normalPurchaseWorks(t: Test): Promise<void> {
  const ok = await sys.purchase(freshBuyer(), sale.id, { quantity: 1 });
  t.equal(ok.status, 202, 'a normal purchase is still accepted afterwards');
}

const { badTokens, badAuthorizations } = badCredentials(sys.cfg.STAMPEDE_JWT_SECRET, buyer, buyers[23]!, sale.id);

// =============================================================================

t.test('POST /v1/sales/{id}/purchases: bodies', async (t) => {
  await unchanged(t, async () => {
    for (const raw of ['{', '{"quantity":1,}', "{'quantity':1}", '{"quantity":01}', 'quantity=1', 'NaN', '   ', '{"quantity":1}}', '\u0000']) {
      problem(t, await buy(raw), 400, 'MALFORMED_JSON', `body ${JSON.stringify(raw)}`);
    }
    // Invalid UTF-8 bytes inside the JSON text.
    problem(t, await buy(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 400, 'MALFORMED_JSON', 'invalid UTF-8');
    for (const raw of ['[]', '"x"', 'null', '1', 'true', '[{"quantity":1}]']) {
      problem(t, await buy(raw), 400, 'VALIDATION_FAILED', `non-object JSON ${raw}`);
    }
    problem(t, await buy(undefined), 400, 'VALIDATION_FAILED', 'missing body', '/');
    problem(t, await buy(undefined, { 'content-type': '' }), 400, 'VALIDATION_FAILED', 'missing body, no content-type', '/');
    problem(t, await buy({}), 400, 'VALIDATION_FAILED', 'empty object', '/quantity');
    for (const q of ['1', true, false, null, {}, { value: 1 }, [1]]) {
      problem(t, await buy({ quantity: q }), 400, 'VALIDATION_FAILED', `quantity ${JSON.stringify(q)}`, '/quantity');
    }
    for (const q of [0, -1, -0, 1.5, 0.999999, 101, 1e308, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER]) {
      problem(t, await buy({ quantity: q }), 400, 'VALIDATION_FAILED', `quantity ${q}`, '/quantity');
    }
    problem(t, await buy({ quantity: sys.cfg.STAMPEDE_MAX_QUANTITY + 1 }), 400, 'VALIDATION_FAILED', 'quantity above STAMPEDE_MAX_QUANTITY', '/quantity');
    for (const raw of ['{"quantity":1e400}', '{"quantity":-1e400}', '{"quantity":1.0000000000000002}']) {
      problem(t, await buy(raw), 400, 'VALIDATION_FAILED', `quantity ${raw}`, '/quantity');
    }
    problem(t, await buy({ quantity: 1, coupon: 'FREE' }), 400, 'VALIDATION_FAILED', 'extra field', '/coupon');
    problem(t, await buy('{"quantity":1,"__proto__":{"admin":true}}'), 400, 'VALIDATION_FAILED', '__proto__ field', '/__proto__');
    // One request, read one way: JSON.parse would take the last of two equal names, another parser the first.
    for (const raw of ['{"quantity":1,"quantity":100}', '{"quantity":100,"quantity":1}', '{"quantity":1,"quanti\\u0074y":2}']) {
      problem(t, await buy(raw), 400, 'MALFORMED_JSON', `duplicate name ${raw}`);
    }
    problem(t, await buy({ quantity: 1, price: 0, buyerId: buyers[5] }), 400, 'VALIDATION_FAILED', 'price and buyerId fields', '/price');
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    problem(t, await buy(deep), 400, 'VALIDATION_FAILED', 'deeply nested arrays');
    const deepObj = '{"quantity":' + '{"a":'.repeat(2000) + '1' + '}'.repeat(2000) + '}';
    problem(t, await buy(deepObj), 400, 'VALIDATION_FAILED', 'deeply nested quantity', '/quantity');
    // A body exactly at the limit is read and judged on its content, not refused for size.
    const atLimit = ' '.repeat(MAX_BODY - '{"quantity":0}'.length) + '{"quantity":0}';
    problem(t, await buy(atLimit), 400, 'VALIDATION_FAILED', `a body of exactly ${MAX_BODY} bytes`, '/quantity');
  });
  await normalPurchaseWorks(t);
});

t.test('POST /v1/sales/{id}/purchases: content types', async (t) => {
  await unchanged(t, async () => {
    for (const ct of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', 'application/xml', 'text/json']) {
      problem(t, await buy({ quantity: 1 }, { 'content-type': ct }), 415, 'UNSUPPORTED_MEDIA_TYPE', `content-type ${ct}`);
    }
    // A JSON body that does not say it is JSON (fetch sends no content-type for bytes).
    const unlabelled = await call(purchasesUrl, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: new TextEncoder().encode('{"quantity":1}') });
    problem(t, unlabelled, 415, 'UNSUPPORTED_MEDIA_TYPE', 'a body without content-type');
    t.match(unlabelled.body.detail, /content-type: application\/json/);
  });
  const ok = await sys.purchase(freshBuyer(), sale.id, { quantity: 1 }, { 'content-type': 'application/json; charset=utf-8' });
  t.equal(ok.status, 202, 'application/json with a charset is accepted');
});

t.test('POST /v1/sales/{id}/purchases: sale ids', async (t) => {
  await unchanged(t, async () => {
    problem(t, await buy({ quantity: 1 }, {}, `${sys.url}/v1/sales/sal_zzzzzzzzzzzz/purchases`), 404, 'NOT_FOUND', 'unknown well-formed sale id');
    problem(t, await buy({ quantity: 1 }, {}, `${sys.url}/v1/sales/sal_000000000000/purchases`), 404, 'NOT_FOUND', 'another unknown sale id');
    for (const id of ['nope', 'sal_', 'sal_ABCDEFGHIJKL', sale.id.toUpperCase(), `${sale.id}x`, sale.id.slice(0, -1), sale.id.slice(4), `usr_${sale.id.slice(4)}`, 'sal_%2e%2e%2fxxxxxx', '%00', `${sale.id}%20`]) {
      problem(t, await buy({ quantity: 1 }, {}, `${sys.url}/v1/sales/${id}/purchases`), 404, 'NOT_FOUND', `malformed sale id ${JSON.stringify(id)}`);
    }
  });
  await normalPurchaseWorks(t);
});

t.test('POST /v1/sales/{id}/purchases: bodies over the limit (413)', async (t) => {
  const post = (headers: string[]) => [`POST /v1/sales/${sale.id}/purchases HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${token}`, 'content-type: application/json', ...headers].join('\r\n');
  await unchanged(t, async () => {
    const big = `{"quantity":1,"pad":"${'a'.repeat(MAX_BODY)}"}`;
    const honest = await rawRequest(port, { head: post([`content-length: ${Buffer.byteLength(big)}`]), chunks: [big] });
    problem(t, honest, 413, 'PAYLOAD_TOO_LARGE', 'an honest content-length over the limit');
    t.equal(honest.headers.connection, 'close', 'the 413 closes the connection');

    const oneOver = `${' '.repeat(MAX_BODY + 1 - '{"quantity":1}'.length)}{"quantity":1}`;
    problem(t, await rawRequest(port, { head: post([`content-length: ${MAX_BODY + 1}`]), chunks: [oneOver] }), 413, 'PAYLOAD_TOO_LARGE', `content-length ${MAX_BODY + 1}, one byte over`);

    const announced = await rawRequest(port, { head: post([`content-length: ${10 * 1024 * 1024}`]) });
    problem(t, announced, 413, 'PAYLOAD_TOO_LARGE', 'a 10 MB content-length, answered before any body is sent');

    const huge = await rawRequest(port, { head: post(['content-length: 999999999']) });
    problem(t, huge, 413, 'PAYLOAD_TOO_LARGE', 'a content-length of 999999999');

    // From 10 digits on (and for non-numeric values) uWebSockets.js's own parser refuses the
    // request and drops the connection before any route runs: no answer, but no acceptance either.
    for (const cl of ['1000000000', '99999999999999999999', '-1', 'abc']) {
      const dropped = await rawRequest(port, { head: post([`content-length: ${cl}`]), chunks: ['{"quantity":1}'], timeoutMs: 2_000 }).catch((err: Error) => err);
      if (dropped instanceof Error) t.match(dropped.message, /closed without an answer/, `content-length ${cl}: the connection is dropped`);
      else problem(t, dropped, cl.length > 9 ? 413 : 400, cl.length > 9 ? 'PAYLOAD_TOO_LARGE' : 'VALIDATION_FAILED', `content-length ${cl}`);
    }

    // A chunked body that grows past the limit a kilobyte at a time.
    const pieces = [chunk('{"quantity":1,"pad":"'), ...Array.from({ length: 40 }, () => chunk('b'.repeat(1024))), chunk('"}'), chunk('')];
    const chunked = await rawRequest(port, { head: post(['transfer-encoding: chunked']), chunks: pieces, chunkDelayMs: 10 });
    problem(t, chunked, 413, 'PAYLOAD_TOO_LARGE', 'a chunked body growing past the limit');
    t.ok(chunked.chunksWritten < pieces.length, `answered as soon as the limit was passed (after ${chunked.chunksWritten} of ${pieces.length} chunks)`);

    // The same without pauses: all chunks in flight at once.
    const fast = await rawRequest(port, { head: post(['transfer-encoding: chunked']), chunks: [Buffer.concat(pieces)] });
    problem(t, fast, 413, 'PAYLOAD_TOO_LARGE', 'a chunked body over the limit in one write');

    // Through node:http's fetch as well: a body over the limit is refused, not a crash.
    const viaFetch = await call(purchasesUrl, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: big,
    }).catch((err: Error) => err);
    if (viaFetch instanceof Error) t.pass(`fetch saw the connection closed while sending (${viaFetch.message})`);
    else problem(t, viaFetch, 413, 'PAYLOAD_TOO_LARGE', 'a large body through fetch');
  });
  // A small chunked body is still fine: chunked encoding itself is not refused.
  const fresh = freshBuyer();
  const small = await rawRequest(port, {
    head: [`POST /v1/sales/${sale.id}/purchases HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${sys.token(fresh)}`, 'content-type: application/json', 'transfer-encoding: chunked'].join('\r\n'),
    chunks: [chunk('{"quantity"'), chunk(':1}'), chunk('')],
  });
  t.equal(small.status, 202, 'a small chunked purchase is accepted');
  await normalPurchaseWorks(t);
});

t.test('POST /v1/sales/{id}/purchases: authentication', async (t) => {
  await unchanged(t, async () => {
    await refusesEach(t, badAuthorizations, (headers) => call(purchasesUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ quantity: 1 }) }));
    // An expired token must say why.
    const expired = await buy({ quantity: 1 }, { authorization: `Bearer ${badTokens[0]![1]}` });
    t.equal(expired.body.detail, 'token expired', 'an expired token is named as such');
    t.match(expired.headers.get('www-authenticate'), /^Bearer/, 'WWW-Authenticate names the scheme');
  });
  const { rows } = await sys.pool.query('SELECT 1 FROM orders WHERE buyer_id = ANY($1)', [buyers]);
  t.equal(rows.length, 0, 'no order for any of these buyers');
  await normalPurchaseWorks(t);
});

t.test('POST /v1/sales/{id}/purchases: Idempotency-Key', async (t) => {
  await unchanged(t, async () => {
    for (const [what, key] of [
      ['201 characters', 'k'.repeat(201)],
      ['4000 characters', 'k'.repeat(4000)],
      ['an inner space', 'order 1'],
      ['an inner tab', 'order\t1'],
      ['a comma list', 'a, b'],
    ] as const) {
      problem(t, await buy({ quantity: 1 }, { 'idempotency-key': key }), 400, 'VALIDATION_FAILED', `Idempotency-Key with ${what}`, 'header:Idempotency-Key');
    }
    const head = (key: Buffer) =>
      Buffer.concat([
        Buffer.from([`POST /v1/sales/${sale.id}/purchases HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${token}`, 'content-type: application/json', 'content-length: 14', 'idempotency-key: '].join('\r\n')),
        key,
      ]);
    for (const [what, key] of [
      ['UTF-8 non-ASCII inside', Buffer.from('commande-é-ü-1', 'utf8')],
      ['latin-1 bytes inside', Buffer.from('cl\xe9f', 'latin1')],
      ['a DEL byte', Buffer.from('ab\x7fcd', 'latin1')],
    ] as const) {
      const a = await rawRequest(port, { head: head(key), chunks: ['{"quantity":1}'] });
      problem(t, a, 400, 'VALIDATION_FAILED', `Idempotency-Key with ${what}`, 'header:Idempotency-Key');
    }
    // A NUL byte in a header: uWebSockets.js's parser neither answers nor closes (it waits for
    // its idle timeout). Not an answer we control, but never an acceptance and never a crash.
    const nul = await rawRequest(port, { head: head(Buffer.from('ab\x00cd', 'latin1')), chunks: ['{"quantity":1}'], timeoutMs: 1_000 }).catch((err: Error) => err);
    if (nul instanceof Error) t.pass(`Idempotency-Key with a NUL byte: no answer (${nul.message})`);
    else problem(t, nul, 400, 'VALIDATION_FAILED', 'Idempotency-Key with a NUL byte', 'header:Idempotency-Key');
  });
  const ok = await sys.purchase(freshBuyer(), sale.id, { quantity: 1 }, { 'idempotency-key': 'k'.repeat(200) });
  t.equal(ok.status, 202, 'a 200-character key is accepted');
});

// uWebSockets.js 20.30 strips trailing bytes >= 0x80 from header values before
// the route sees them (so "clé" arrives as "cl"): that is beyond the api's
// reach and stated in the README. Non-ASCII anywhere else in a key is refused.
t.test('Idempotency-Key with non-ASCII bytes inside is refused', async (t) => {
  for (const [what, key] of [
    ['a latin-1 byte', Buffer.from('cl\xe9-1', 'latin1')],
    ['a UTF-8 character', Buffer.from('commande-日本-1', 'utf8')],
  ] as const) {
    const head = Buffer.concat([
      Buffer.from([`POST /v1/sales/${sale.id}/purchases HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${sys.token(freshBuyer())}`, 'content-type: application/json', 'content-length: 14', 'idempotency-key: '].join('\r\n')),
      key,
    ]);
    const a = await rawRequest(port, { head, chunks: ['{"quantity":1}'] });
    problem(t, a, 400, 'VALIDATION_FAILED', `Idempotency-Key with ${what}`, 'header:Idempotency-Key');
  }
});

t.test('GET and DELETE /v1/purchases/{id}: malformed and foreign ids', async (t) => {
  const auth = { authorization: `Bearer ${token}` };
  await unchanged(t, async () => {
    for (const id of ['nope', 'pur_', 'pur_xxxxxxxxxxxx_yyyyyyyyyyyyyyyy', `pur_${sale.id.slice(4)}_short`, `pur_${sale.id.slice(4)}_${'A'.repeat(16)}`, sale.id]) {
      problem(t, await call(`${sys.url}/v1/purchases/${id}`, { headers: auth }), 404, 'NOT_FOUND', `GET /v1/purchases/${id}`);
      problem(t, await call(`${sys.url}/v1/purchases/${id}`, { method: 'DELETE', headers: auth }), 404, 'NOT_FOUND', `DELETE /v1/purchases/${id}`);
    }
    problem(t, await call(`${sys.url}/v1/purchases/pur_${sale.id.slice(4)}_0000000000000000`, { headers: auth }), 404, 'NOT_FOUND', 'a well-formed unknown purchase');
    problem(t, await call(`${sys.url}/v1/purchases/pur_${sale.id.slice(4)}_${'0'.repeat(24)}`, { headers: auth }), 404, 'NOT_FOUND', 'a well-formed unknown purchase (with its time)');
    problem(t, await call(`${sys.url}/v1/purchases/nope`), 401, 'UNAUTHORIZED', 'GET /v1/purchases without a token');
  });
});

// --- operator endpoints -------------------------------------------------------

/** The name every refused sale carries, unique to this run, so "no row" can be checked by name. */
const MARKER = `bad-input marker ${sale.id}`;
const goodSale = (over: Record<string, unknown> = {}) => ({
  name: MARKER, sku: 'BAD-1', unitPrice: 100, currency: 'EUR', stock: 10, perBuyerLimit: 1,
  startsAt: new Date(Date.now() + 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), ...over,
});

t.test('operator routes: API keys', async (t) => {
  const routes: [string, string, unknown][] = [
    ['POST', '/v1/sales', goodSale()],
    ['POST', `/v1/buyers/${buyer}/credits`, { currency: 'EUR', amount: 100 }],
    ['POST', '/v1/buyers', { name: 'bad-input buyer' }],
    ['GET', `/v1/buyers/${buyer}/wallet`, undefined],
    ['POST', `/v1/sales/${sale.id}/stock`, { units: 1 }],
    ['POST', `/v1/sales/${sale.id}/close`, undefined],
    ['GET', '/v1/ops/queues', undefined],
  ];
  await unchanged(t, async () => {
    for (const [method, path, body] of routes) {
      await refusesEach(t, badApiKeys(OPERATOR_KEY, token), (headers) => call(`${sys.url}${path}`, {
        method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body),
      }), `${method} ${path}`);
    }
  });
  const { rows } = await sys.pool.query(`SELECT status FROM sales WHERE id = $1`, [sale.id]);
  t.equal(rows[0].status, 'open', 'the sale was not closed');
});

t.test('POST /v1/sales: bad fields', async (t) => {
  const past = new Date(Date.now() - 3_600_000).toISOString();
  const cases: [string, Record<string, unknown>, string | undefined][] = [
    ['currency "eur"', { currency: 'eur' }, '/currency'],
    ['currency "EURO"', { currency: 'EURO' }, '/currency'],
    ['currency 978', { currency: 978 }, '/currency'],
    ['negative price', { unitPrice: -1 }, '/unitPrice'],
    ['fractional price', { unitPrice: 9.99 }, '/unitPrice'],
    ['price as a string', { unitPrice: '100' }, '/unitPrice'],
    ['price over 1e12', { unitPrice: 1e12 + 1 }, '/unitPrice'],
    ['stock over 10,000,000', { stock: 10_000_001 }, '/stock'],
    ['negative stock', { stock: -1 }, '/stock'],
    ['stock 1e308', { stock: 1e308 }, '/stock'],
    ['perBuyerLimit 0', { perBuyerLimit: 0 }, '/perBuyerLimit'],
    ['endsAt before startsAt', { startsAt: new Date(Date.now() + 7_200_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString() }, '/endsAt'],
    ['endsAt equal to startsAt', { startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }, '/endsAt'],
    ['endsAt before startsAt, both past', { startsAt: past, endsAt: '2000-01-01T00:00:00Z' }, '/endsAt'],
    ['startsAt "tomorrow"', { startsAt: 'tomorrow' }, '/startsAt'],
    ['startsAt a date without time', { startsAt: '2030-01-01' }, '/startsAt'],
    ['startsAt with a space', { startsAt: '2030-01-01 10:00:00Z' }, '/startsAt'],
    ['startsAt without a zone', { startsAt: '2030-01-01T10:00:00' }, '/startsAt'],
    ['startsAt as epoch ms', { startsAt: Date.now() }, '/startsAt'],
    ['startsAt as an RFC 2822 date', { startsAt: new Date().toUTCString() }, '/startsAt'],
    ['month 13', { startsAt: '2030-13-01T00:00:00Z' }, undefined],
    ['hour 25', { endsAt: '2030-01-01T25:00:00Z' }, undefined],
    ['empty name', { name: '' }, '/name'],
    ['sku with a space', { sku: 'BAD 1' }, '/sku'],
    ['an extra field', { sellerId: buyer }, '/sellerId'],
    ['a missing field', { stock: undefined }, '/stock'],
  ];
  await unchanged(t, async () => {
    for (const [what, over, path] of cases) {
      const a = await sys.operator('/v1/sales', { method: 'POST', body: JSON.stringify(goodSale(over)) });
      problem(t, a, 400, 'VALIDATION_FAILED', `POST /v1/sales with ${what}`, path);
    }
    problem(t, await sys.operator('/v1/sales', { method: 'POST', body: '{"name":' }), 400, 'MALFORMED_JSON', 'POST /v1/sales malformed');
    problem(t, await sys.operator('/v1/sales', { method: 'POST', body: '[]' }), 400, 'VALIDATION_FAILED', 'POST /v1/sales with []');
    problem(t, await sys.operator('/v1/sales', { method: 'POST' }), 400, 'VALIDATION_FAILED', 'POST /v1/sales without a body');
    problem(t, await sys.operator(`/v1/sales/${sale.id}/stock`, { method: 'POST', body: JSON.stringify({ units: 0 }) }), 400, 'VALIDATION_FAILED', 'add 0 units', '/units');
    problem(t, await sys.operator(`/v1/sales/${sale.id}/stock`, { method: 'POST', body: JSON.stringify({ units: 10_000_000 }) }), 400, 'VALIDATION_FAILED', 'add stock past 10,000,000', '/units');
    problem(t, await sys.operator('/v1/sales/sal_zzzzzzzzzzzz/stock', { method: 'POST', body: JSON.stringify({ units: 1 }) }), 404, 'NOT_FOUND', 'add stock to an unknown sale');
    problem(t, await sys.operator('/v1/sales/nope/close', { method: 'POST' }), 404, 'NOT_FOUND', 'close a malformed sale id');
  });
  const { rows } = await sys.pool.query('SELECT 1 FROM sales WHERE name = $1', [MARKER]);
  t.equal(rows.length, 0, 'no sale row created');
  const ok = await sys.operator('/v1/sales', { method: 'POST', body: JSON.stringify(goodSale({ name: 'bad-input good sale' })) });
  t.equal(ok.status, 201, 'a valid sale is still created afterwards');
});

// --- src bugs: these fail until fixed (see the report) -------------------------

t.test('KNOWN BUG: a NUL character in a free-text field is a 400, not a 500', async (t) => {
  // Postgres text cannot hold U+0000; the schemas let it through and the INSERT fails (22021) -> 500 INTERNAL.
  await unchanged(t, async () => {
    for (const [what, path, body] of [
      ['sale name', '/v1/sales', goodSale({ name: `${MARKER}\u0000` })],
      ['buyer name', '/v1/buyers', { name: 'bad-input buyer\u0000' }],
      ['buyer email', '/v1/buyers', { name: 'bad-input buyer', email: 'a\u0000@b.c' }],
      ['batch buyer name', '/v1/buyers/batch', { buyers: [{ name: 'bad-input buyer\u0000' }] }],
    ] as const) {
      const a = await sys.operator(path, { method: 'POST', body: JSON.stringify(body) });
      t.not(a.status, 500, `${what} with U+0000: not a 500`);
      problem(t, a, 400, 'VALIDATION_FAILED', `${what} with U+0000`);
    }
  });
});

t.test('KNOWN BUG: an impossible calendar date is refused, not rolled over', async (t) => {
  // new Date('2030-02-30T00:00:00Z') is 2030-03-02 in V8: the sale is created with another date.
  await unchanged(t, async () => {
    for (const startsAt of ['2030-02-30T00:00:00Z', '2031-02-29T00:00:00Z', '2030-04-31T10:00Z', '2030-06-31T00:00:00+02:00']) {
      const a = await sys.operator('/v1/sales', { method: 'POST', body: JSON.stringify(goodSale({ startsAt, endsAt: '2032-01-01T00:00:00Z' })) });
      problem(t, a, 400, 'VALIDATION_FAILED', `startsAt ${startsAt}`, '/startsAt');
    }
  });
});

t.test('POST /v1/buyers/{id}/credits: bad amounts', async (t) => {
  const target = buyers[22]!;
  const wallet = async () => (await sys.pool.query('SELECT currency, balance::text FROM wallets WHERE user_id = $1 ORDER BY currency', [target])).rows;
  const before = await wallet();
  await unchanged(t, async () => {
    for (const [what, body, path] of [
      ['amount 0', { currency: 'EUR', amount: 0 }, '/amount'],
      ['a negative amount', { currency: 'EUR', amount: -500 }, '/amount'],
      ['a fractional amount', { currency: 'EUR', amount: 10.5 }, '/amount'],
      ['an amount over 1e12', { currency: 'EUR', amount: 1e12 + 1 }, '/amount'],
      ['amount 1e308', { currency: 'EUR', amount: 1e308 }, '/amount'],
      ['amount as a string', { currency: 'EUR', amount: '100' }, '/amount'],
      ['currency "eur"', { currency: 'eur', amount: 100 }, '/currency'],
      ['no currency', { amount: 100 }, '/currency'],
      ['an extra field', { currency: 'EUR', amount: 100, kind: 'refund' }, '/kind'],
    ] as const) {
      problem(t, await sys.operator(`/v1/buyers/${target}/credits`, { method: 'POST', body: JSON.stringify(body) }), 400, 'VALIDATION_FAILED', `credit with ${what}`, path);
    }
    problem(t, await sys.operator(`/v1/buyers/${target}/credits`, { method: 'POST', body: '{"currency":"EUR","amount":1e400}' }), 400, 'VALIDATION_FAILED', 'amount 1e400', '/amount');
    problem(t, await sys.operator('/v1/buyers/usr_zzzzzzzzzzzz/credits', { method: 'POST', body: JSON.stringify({ currency: 'EUR', amount: 1 }) }), 404, 'NOT_FOUND', 'credit an unknown buyer');
    problem(t, await sys.operator('/v1/buyers/nope/credits', { method: 'POST', body: JSON.stringify({ currency: 'EUR', amount: 1 }) }), 404, 'NOT_FOUND', 'credit a malformed buyer id');
    problem(t, await sys.operator(`/v1/buyers/${sale.id}/credits`, { method: 'POST', body: JSON.stringify({ currency: 'EUR', amount: 1 }) }), 404, 'NOT_FOUND', 'credit a sale id');
    problem(t, await sys.operator('/v1/buyers/nope/wallet'), 404, 'NOT_FOUND', 'wallet of a malformed buyer id');
    problem(t, await sys.operator('/v1/buyers', { method: 'POST', body: JSON.stringify({ name: 'bad-input buyer', email: 'x' }) }), 400, 'VALIDATION_FAILED', 'create a buyer with a bad email', '/email');
    problem(t, await sys.operator('/v1/buyers/batch', { method: 'POST', body: JSON.stringify({ buyers: [] }) }), 400, 'VALIDATION_FAILED', 'create an empty batch', '/buyers');
    problem(t, await sys.operator('/v1/buyers/batch', { method: 'POST', body: JSON.stringify({ buyers: [{ name: 'bad-input buyer' }, { name: '' }] }) }), 400, 'VALIDATION_FAILED', 'a batch with one bad buyer creates none', '/buyers/1/name');
  });
  t.same(await wallet(), before, 'the wallet is unchanged');
  const ok = await sys.operator(`/v1/buyers/${target}/credits`, { method: 'POST', body: JSON.stringify({ currency: 'EUR', amount: 1 }) });
  t.equal(ok.status, 201, 'a valid credit still works afterwards');
});

t.test('GET /v1/sales paging, unknown routes', async (t) => {
  await unchanged(t, async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'limit=1.5', 'limit=', 'limit=1e2', 'limit=0x10', 'limit=%20', 'limit=99999999999999999999']) {
      problem(t, await call(`${sys.url}/v1/sales?${q}`), 400, 'VALIDATION_FAILED', `GET /v1/sales?${q}`, 'query:limit');
    }
    problem(t, await call(`${sys.url}/v1/sales?after=nope`), 400, 'VALIDATION_FAILED', 'GET /v1/sales?after=nope', 'query:after');
    for (const [method, path] of [
      ['GET', '/nope'], ['GET', '/v1'], ['GET', '/v1/nothing'], ['POST', '/v1/nothing'], ['GET', '/v1/sales/x/y/z'],
      ['PUT', '/v1/sales'], ['PATCH', `/v1/sales/${sale.id}`], ['DELETE', `/v1/sales/${sale.id}`], ['GET', `/v1/sales/${sale.id}/purchases`],
      ['GET', '/%00'], ['GET', '/../../etc/passwd'],
    ] as const) {
      problem(t, await call(`${sys.url}${path}`, { method }), 404, 'NOT_FOUND', `${method} ${path}`);
    }
    problem(t, await call(`${sys.url}/v1/sales/nope`), 404, 'NOT_FOUND', 'GET /v1/sales/{malformed}');
    problem(t, await call(`${sys.url}/v1/sales/sal_zzzzzzzzzzzz`), 404, 'NOT_FOUND', 'GET /v1/sales/{unknown}');
  });
  const ok = await call(`${sys.url}/v1/sales?limit=100`);
  t.equal(ok.status, 200, 'limit=100 is fine');
});

t.test('200 mixed bad requests at once: no 5xx, state unchanged, still up', async (t) => {
  const j = { 'content-type': 'application/json' };
  const auth = { ...j, authorization: `Bearer ${token}` };
  const makers: (() => Promise<Answer>)[] = [
    () => call(purchasesUrl, { method: 'POST', headers: auth, body: '{' }),
    () => call(purchasesUrl, { method: 'POST', headers: auth, body: '[]' }),
    () => call(purchasesUrl, { method: 'POST', headers: auth, body: '{"quantity":"1"}' }),
    () => call(purchasesUrl, { method: 'POST', headers: auth, body: '{"quantity":0}' }),
    () => call(purchasesUrl, { method: 'POST', headers: auth, body: '{"quantity":1e308}' }),
    () => call(purchasesUrl, { method: 'POST', headers: auth, body: '{"quantity":1,"x":1}' }),
    () => call(purchasesUrl, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{"quantity":1}' }),
    () => call(purchasesUrl, { method: 'POST', headers: { ...auth, 'idempotency-key': 'a b' }, body: '{"quantity":1}' }),
    () => call(purchasesUrl, { method: 'POST', headers: j, body: '{"quantity":1}' }),
    () => call(purchasesUrl, { method: 'POST', headers: { ...j, authorization: `Bearer ${badTokens[3]![1]}` }, body: '{"quantity":1}' }),
    () => call(purchasesUrl, { method: 'POST', headers: { ...j, authorization: `Bearer ${badTokens[0]![1]}` }, body: '{"quantity":1}' }),
    () => call(`${sys.url}/v1/sales/sal_zzzzzzzzzzzz/purchases`, { method: 'POST', headers: auth, body: '{"quantity":1}' }),
    () => call(`${sys.url}/v1/sales/bad/purchases`, { method: 'POST', headers: auth, body: '{"quantity":1}' }),
    () => call(`${sys.url}/v1/sales?limit=abc`),
    () => call(`${sys.url}/v1/nothing`),
    () => call(`${sys.url}/v1/purchases/nope`, { headers: auth }),
    () => sys.operator('/v1/sales', { method: 'POST', body: JSON.stringify(goodSale({ currency: 'eur' })) }),
    () => sys.operator(`/v1/buyers/${buyer}/credits`, { method: 'POST', body: '{"currency":"EUR","amount":-1}' }),
    () => call(`${sys.url}/v1/sales`, { method: 'POST', headers: { ...j, 'x-api-key': 'wrong' }, body: '{}' }),
    () =>
      rawRequest(port, {
        head: [`POST /v1/sales/${sale.id}/purchases HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${token}`, 'content-type: application/json', 'transfer-encoding: chunked'].join('\r\n'),
        chunks: [chunk('x'.repeat(MAX_BODY + 10)), chunk('')],
      }),
    () => rawRequest(port, { head: [`POST /v1/sales/${sale.id}/purchases HTTP/1.1`, 'host: 127.0.0.1', 'content-type: application/json', `content-length: ${MAX_BODY * 4}`].join('\r\n') }),
  ];
  await unchanged(t, async () => {
    const answers = await Promise.all(Array.from({ length: 210 }, (_, i) => makers[i % makers.length]!().catch((err: Error) => err)));
    const failures = answers.filter((a): a is Error => a instanceof Error);
    t.same(failures.map((e) => e.message), [], 'every request got an answer');
    const statuses = answers.filter((a): a is Answer => !(a instanceof Error)).map((a) => a.status);
    t.equal(statuses.filter((s) => s >= 500).length, 0, 'no 5xx');
    t.ok(statuses.every((s) => s >= 400 && s < 500), `every answer is a 4xx (${[...new Set(statuses)].sort().join(', ')})`);
    const untyped = answers.filter((a): a is Answer => !(a instanceof Error) && contentTypeOf(a) !== 'application/problem+json');
    t.equal(untyped.length, 0, 'every answer is problem+json');
  });
  await normalPurchaseWorks(t);
  const ready = await call(`${sys.url}/readyz`);
  t.equal(ready.status, 200, 'GET /readyz is 200');
});
