/**
 * Invariant 6 for the interests and sale-watch routes: bad input never
 * crashes, never yields a 5xx, never changes an interest or a watch, and
 * always gets a precise problem+json error.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, type HttpAnswer } from '../helpers/system.js';
import { badCredentials, problem, refusesEach } from '../helpers/problem.js';

const sys = await boot(t, { worker: false });
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const [buyer, other] = await sys.createBuyers(2);
const token = sys.token(buyer!);
const sale = await sys.createSale();
await sys.pool.query("INSERT INTO buyer_interests (buyer_id, collection) VALUES ($1, 'kept'), ($2, 'kept')", [buyer, other]);
await sys.pool.query('INSERT INTO sale_watches (sale_id, buyer_id) VALUES ($1, $2), ($1, $3)', [sale.id, buyer, other]);
const { badAuthorizations } = badCredentials(sys.cfg.STAMPEDE_JWT_SECRET, buyer!, other!, sale.id);

async function snapshot(): Promise<unknown> {
  const { rows: interests } = await sys.pool.query('SELECT buyer_id, collection, created_at FROM buyer_interests ORDER BY buyer_id, collection');
  const { rows: watches } = await sys.pool.query('SELECT sale_id, buyer_id, created_at FROM sale_watches ORDER BY sale_id, buyer_id');
  return { interests, watches };
}

async function unchanged(t: Test, bad: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'nothing changed: interests, watches');
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'still up');
  t.equal((await send('GET', '/v1/interests')).status, 200, 'interests still answer');
}

const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body });

const ROUTES: [string, string][] = [
  ['GET', '/v1/interests'], ['PUT', '/v1/interests/new'], ['DELETE', '/v1/interests/kept'],
  ['PUT', `/v1/sales/${sale.id}/watch`], ['DELETE', `/v1/sales/${sale.id}/watch`],
];

t.test('every route refuses a missing or bad token', async (t) => {
  await unchanged(t, async () => {
    for (const [method, path] of ROUTES) {
      await refusesEach(t, badAuthorizations, (headers) => call(`${sys.url}${path}`, { method, headers }), `${method} ${path}`);
    }
  });
});

t.test('collection names: empty, too long, bad percent-encoding, control characters', async (t) => {
  await unchanged(t, async () => {
    const bad: [string, string][] = [
      ['201 characters', encodeURIComponent('x'.repeat(201))], ['201 characters, encoded', encodeURIComponent('é'.repeat(201))],
      ['a lone %', '%'], ['%zz', 'a%zz'], ['a truncated escape', 'a%e2%82'], ['invalid UTF-8', '%ff%fe'], ['a NUL', 'a%00b'], ['a line feed', 'a%0Ab'],
      ['a tab', '%09'], ['DEL', 'a%7F'],
    ];
    for (const method of ['PUT', 'DELETE']) {
      for (const [what, raw] of bad) problem(t, await send(method, `/v1/interests/${raw}`), 400, 'VALIDATION_FAILED', `${method} ${what}`, 'path:collection');
      const empty = await send(method, '/v1/interests/');
      t.ok(empty.status === 404 || empty.status === 405, `${method} an empty name is no route (${empty.status})`);
      t.equal(empty.headers.get('content-type'), 'application/problem+json');
    }
  });
});

t.test('bodies: PUT takes none, or an empty object; too large is 413', async (t) => {
  await unchanged(t, async () => {
    for (const path of ['/v1/interests/new', `/v1/sales/${sale.id}/watch`]) {
      for (const body of ['{"collection":"x"}', '[]', '"x"', '1', 'null']) {
        const a = await send('PUT', path, body);
        t.equal(a.status, 400, `PUT ${path} ${body}`);
        t.equal(a.body.code, 'VALIDATION_FAILED');
      }
      problem(t, await send('PUT', path, '{'), 400, 'MALFORMED_JSON', `PUT ${path} broken JSON`);
      problem(t, await send('PUT', path, JSON.stringify({ pad: 'x'.repeat(MAX_BODY) })), 413, 'PAYLOAD_TOO_LARGE', `PUT ${path} too large`);
    }
  });
});

t.test('sale ids: malformed or unknown is 404', async (t) => {
  await unchanged(t, async () => {
    for (const method of ['PUT', 'DELETE']) {
      for (const id of ['sal_000000000000', 'sal_x', 'SAL_AAAAAAAAAAAA', `${sale.id}x`, encodeURIComponent("sal_'; DROP TABLE sales;--"), 'auc_000000000000']) {
        problem(t, await send(method, `/v1/sales/${id}/watch`), 404, 'NOT_FOUND', `${method} sale ${id}`);
      }
    }
  });
});
