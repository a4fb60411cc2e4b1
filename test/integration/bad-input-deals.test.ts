/**
 * Invariant 6 for bundle and private sales: bad input to POST /v1/sales
 * (items, discount, eligibleBuyers), to GET and PUT
 * /v1/sales/{id}/eligible-buyers and to GET /v1/sales?eligible= never
 * crashes, never yields a 5xx, changes nothing in Postgres or Redis, and
 * always gets a precise problem+json error.
 */
import { scanKeys } from '../../src/platform/redis/client.js';
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, OPERATOR_KEY, type HttpAnswer } from '../helpers/system.js';
import { badApiKeys, problem, refusesEach } from '../helpers/problem.js';
import { saleKeys } from '../../src/sales/keys.js';
import { newUserId } from '../../src/platform/ids.js';

const sys = await boot(t, { worker: false });
const MAX_ITEMS = sys.cfg.STAMPEDE_MAX_BUNDLE_ITEMS;
const MAX_LISTED = sys.cfg.STAMPEDE_MAX_ELIGIBLE_BUYERS;
const buyers = await sys.createBuyers(3);
const shop = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Shop' }) })).body as { id: string; apiKey: string };
const rival = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Rival' }) })).body as { id: string; apiKey: string };
const window = { startsAt: new Date(Date.now() - 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString() };
const base = { name: 'deal', sku: 'DEAL-1', currency: 'EUR', stock: 5, perBuyerLimit: 1, ...window };
const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': shop.apiKey, 'content-type': 'application/json', ...headers }, body });
const privateSale = (await send('POST', '/v1/sales', JSON.stringify({ ...base, unitPrice: 100, eligibleBuyers: [buyers[0]] }))).body as { id: string };
const publicSale = (await send('POST', '/v1/sales', JSON.stringify({ ...base, unitPrice: 100 }))).body as { id: string };
const LIST = `/v1/sales/${privateSale.id}/eligible-buyers`;
const items = [{ name: 'A', unitPrice: 1_000, quantity: 2 }, { name: 'B', unitPrice: 500, quantity: 1 }];

async function unchanged(t: Test, bad: () => Promise<void>): Promise<void> {
  const snapshot = async () => ({
    rows: (await sys.pool.query(`SELECT (SELECT count(*)::int FROM sales) AS sales, (SELECT count(*)::int FROM sale_eligible_buyers) AS listed,
      (SELECT string_agg(buyer_id, ',' ORDER BY buyer_id) FROM sale_eligible_buyers WHERE sale_id = $1) AS ours`, [privateSale.id])).rows,
    saleKeys: (await scanKeys(sys.redis, '{sale:*}')).sort(),
    eligible: (await sys.redis.smembers(saleKeys.eligible(privateSale.id))).sort(),
    publicSet: await sys.redis.exists(saleKeys.eligible(publicSale.id)),
  });
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'nothing changed in Postgres or Redis');
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'still up');
}

t.test('POST /v1/sales: a bundle\'s items and discount, precisely', async (t) => {
  const item = items[0]!;
  const cases: [string, Record<string, unknown>, string][] = [
    ['no items', { items: [] }, '/items'],
    [`${MAX_ITEMS + 1} items`, { items: Array(MAX_ITEMS + 1).fill(item) }, '/items'],
    ['items not an array', { items: item }, '/items'],
    ['an item without a name', { items: [{ unitPrice: 1, quantity: 1 }] }, '/items/0/name'],
    ['an item with an empty name', { items: [{ ...item, name: '' }] }, '/items/0/name'],
    ['an item without a price', { items: [{ name: 'x', quantity: 1 }] }, '/items/0/unitPrice'],
    ['an item priced -1', { items: [item, { ...item, unitPrice: -1 }] }, '/items/1/unitPrice'],
    ['an item priced 9.99', { items: [{ ...item, unitPrice: 9.99 }] }, '/items/0/unitPrice'],
    ['an item priced "100"', { items: [{ ...item, unitPrice: '100' }] }, '/items/0/unitPrice'],
    ['an item priced over 1e12', { items: [{ ...item, unitPrice: 1e12 + 1 }] }, '/items/0/unitPrice'],
    ['quantity 0', { items: [{ ...item, quantity: 0 }] }, '/items/0/quantity'],
    ['quantity 1001', { items: [{ ...item, quantity: 1_001 }] }, '/items/0/quantity'],
    ['quantity 1.5', { items: [{ ...item, quantity: 1.5 }] }, '/items/0/quantity'],
    ['an item with an extra field', { items: [{ ...item, sku: 'x' }] }, '/items/0/sku'],
    ['a subtotal over 1e12', { items: [{ ...item, unitPrice: 1e12, quantity: 1 }, { ...item, unitPrice: 1, quantity: 1 }] }, '/items/1'],
    ['unitPrice beside items', { items, unitPrice: 100 }, '/unitPrice'],
    ['neither unitPrice nor items', {}, '/unitPrice'],
    ['a discount without items', { unitPrice: 100, discount: { type: 'flat', amount: 1 } }, '/discount'],
    ['a discount of an unknown type', { items, discount: { type: 'bogo' } }, '/discount/type'],
    ['a discount without a type', { items, discount: { amount: 1 } }, '/discount/type'],
    ['a flat discount without an amount', { items, discount: { type: 'flat' } }, '/discount/amount'],
    ['a flat discount with basisPoints', { items, discount: { type: 'flat', amount: 1, basisPoints: 1 } }, '/discount/basisPoints'],
    ['a flat discount over the subtotal', { items, discount: { type: 'flat', amount: 2_501 } }, '/discount/amount'],
    ['a negative flat discount', { items, discount: { type: 'flat', amount: -1 } }, '/discount/amount'],
    ['a percentage without basisPoints', { items, discount: { type: 'percentage' } }, '/discount/basisPoints'],
    ['a percentage with an amount', { items, discount: { type: 'percentage', basisPoints: 10, amount: 1 } }, '/discount/amount'],
    ['a percentage over 100 %', { items, discount: { type: 'percentage', basisPoints: 10_001 } }, '/discount/basisPoints'],
    ['a percentage of 12.5 (not basis points)', { items, discount: { type: 'percentage', basisPoints: 12.5 } }, '/discount/basisPoints'],
    ['a discount with an extra field', { items, discount: { type: 'flat', amount: 1, code: 'X' } }, '/discount/code'],
    ['a discount that is a number', { items, discount: 10 }, '/discount'],
  ];
  await unchanged(t, async () => {
    for (const [what, over, path] of cases) {
      const body = { ...base, name: 'bad-deal', ...over };
      problem(t, await send('POST', '/v1/sales', JSON.stringify(body)), 400, 'VALIDATION_FAILED', what, path);
    }
  });
});

t.test('POST /v1/sales: eligibleBuyers, precisely', async (t) => {
  const [a, b] = buyers;
  const cases: [string, unknown, string][] = [
    ['an empty list', [], '/eligibleBuyers'],
    ['not a list', a, '/eligibleBuyers'],
    ['not an id', [a, 'bob'], '/eligibleBuyers/1'],
    ['a number', [7], '/eligibleBuyers/0'],
    ['listed twice', [a, b, a], '/eligibleBuyers/2'],
    ['not a buyer', [a, newUserId()], '/eligibleBuyers/1'],
    ['a seller', [shop.id], '/eligibleBuyers/0'],
    [`${MAX_LISTED + 1} buyers`, Array.from({ length: MAX_LISTED + 1 }, () => newUserId()), '/eligibleBuyers'],
  ];
  await unchanged(t, async () => {
    for (const [what, eligibleBuyers, path] of cases) {
      problem(t, await send('POST', '/v1/sales', JSON.stringify({ ...base, unitPrice: 1, eligibleBuyers })), 400, 'VALIDATION_FAILED', what, path);
    }
    const huge = JSON.stringify({ ...base, unitPrice: 1, eligibleBuyers: Array(MAX_LISTED * 2).fill('usr_000000000000') });
    problem(t, await send('POST', '/v1/sales', huge), 413, 'PAYLOAD_TOO_LARGE', 'past even the list\'s body limit');
  });
});

t.test('PUT /v1/sales/{id}/eligible-buyers: bodies, sales and callers, precisely', async (t) => {
  const [a] = buyers;
  const put = (body: string | undefined, path = LIST, headers: Record<string, string> = {}) => send('PUT', path, body, headers);
  await unchanged(t, async () => {
    const cases: [string, unknown, string][] = [
      ['no buyerIds', {}, '/buyerIds'],
      ['buyerIds null', { buyerIds: null }, '/buyerIds'],
      ['buyerIds a string', { buyerIds: a }, '/buyerIds'],
      ['an extra field', { buyerIds: [a], add: [a] }, '/add'],
      ['not an id', { buyerIds: ['usr_'] }, '/buyerIds/0'],
      ['listed twice', { buyerIds: [a, a] }, '/buyerIds/1'],
      ['not a buyer', { buyerIds: [newUserId()] }, '/buyerIds/0'],
      [`${MAX_LISTED + 1} buyers`, { buyerIds: Array.from({ length: MAX_LISTED + 1 }, () => newUserId()) }, '/buyerIds'],
    ];
    for (const [what, body, path] of cases) problem(t, await put(JSON.stringify(body)), 400, 'VALIDATION_FAILED', what, path);
    problem(t, await put('{"buyerIds":['), 400, 'MALFORMED_JSON', 'broken JSON');
    problem(t, await put(undefined), 400, 'VALIDATION_FAILED', 'no body', '/');
    problem(t, await put('[]'), 400, 'VALIDATION_FAILED', 'an array', '/');
    problem(t, await put(JSON.stringify({ buyerIds: [a] }), LIST, { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'not JSON');
    problem(t, await put(JSON.stringify({ buyerIds: Array(MAX_LISTED * 2).fill('usr_000000000000') })), 413, 'PAYLOAD_TOO_LARGE', 'past the list\'s body limit');
    problem(t, await put(JSON.stringify({ buyerIds: [a] }), `/v1/sales/${publicSale.id}/eligible-buyers`), 409, 'CONFLICT', 'a public sale has no list');
    problem(t, await send('GET', `/v1/sales/${publicSale.id}/eligible-buyers`), 409, 'CONFLICT', 'GET: a public sale has no list');
    for (const id of ['sal_zzzzzzzzzzzz', 'sal_', 'nope', `${privateSale.id}x`]) {
      problem(t, await put(JSON.stringify({ buyerIds: [a] }), `/v1/sales/${id}/eligible-buyers`), 404, 'NOT_FOUND', `PUT sale ${id}`);
      problem(t, await send('GET', `/v1/sales/${id}/eligible-buyers`), 404, 'NOT_FOUND', `GET sale ${id}`);
    }
    problem(t, await put(JSON.stringify({ buyerIds: [a] }), LIST, { 'x-api-key': rival.apiKey }), 404, 'NOT_FOUND', 'another seller\'s sale');
    problem(t, await send('GET', LIST, undefined, { 'x-api-key': rival.apiKey }), 404, 'NOT_FOUND', 'GET: another seller\'s sale');
    // The rival's bad body is not even read before its sale is refused as absent.
    problem(t, await put(JSON.stringify({ buyerIds: [newUserId()] }), LIST, { 'x-api-key': rival.apiKey }), 404, 'NOT_FOUND', 'another seller\'s sale, bad ids');
    for (const method of ['PUT', 'GET']) {
      await refusesEach(t, badApiKeys(OPERATOR_KEY, sys.token(a!)), (headers) => call(`${sys.url}${LIST}`, {
        method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'PUT' ? JSON.stringify({ buyerIds: [a] }) : undefined,
      }), `${method} ${LIST}`);
    }
  });
});

t.test('GET /v1/sales?eligible=: values and credentials, precisely', async (t) => {
  await unchanged(t, async () => {
    for (const value of ['yes', '1', 'TRUE', '']) {
      problem(t, await call(`${sys.url}/v1/sales?eligible=${value}`), 400, 'VALIDATION_FAILED', `eligible=${value}`, 'query:eligible');
    }
    problem(t, await call(`${sys.url}/v1/sales?eligible=true`), 401, 'UNAUTHORIZED', 'eligible=true without a token');
    problem(t, await call(`${sys.url}/v1/sales?eligible=true`, { headers: { authorization: 'Bearer x.y.z' } }), 401, 'UNAUTHORIZED', 'with a bad token');
    problem(t, await call(`${sys.url}/v1/sales?eligible=true`, { headers: { 'x-api-key': OPERATOR_KEY } }), 401, 'UNAUTHORIZED', 'with an API key (a buyer\'s list)');
    problem(t, await call(`${sys.url}/v1/sales?eligible=true&limit=0`, { headers: { authorization: `Bearer ${sys.token(buyers[0]!)}` } }), 400, 'VALIDATION_FAILED', 'limit=0', 'query:limit');
    t.equal((await call(`${sys.url}/v1/sales?eligible=false`)).status, 200, 'eligible=false: the public list');
  });
});
