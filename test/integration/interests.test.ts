/**
 * The buyers' interests and sale watches on the real api and Postgres:
 * follow a collection (201, then 200 with the same `since`), list,
 * unfollow (204, again 204), the per-buyer limit, names percent-decoded
 * exactly; watch a sale (201/200), unwatch (204), an unknown sale 404; each
 * buyer sees and changes only their own.
 */
import t from 'tap';
import { boot, call, type HttpAnswer } from '../helpers/system.js';
import { saleWatchersOf } from '../../src/notifications/repository.js';

const MAX = 3;
const sys = await boot(t, { worker: false, env: { STAMPEDE_MAX_INTERESTS: String(MAX) } });
const [buyer, other] = await sys.createBuyers(2);

const as = (who: string) => (method: string, path: string, body?: string): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { method, headers: { authorization: `Bearer ${sys.token(who)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body });
const me = as(buyer!);
const them = as(other!);
const path = (c: string) => `/v1/interests/${encodeURIComponent(c)}`;

t.test('follow, list, follow again, unfollow', async (t) => {
  const name = 'Watches & Clocks / 1950s — “Ω”';
  const first = await me('PUT', path(name));
  t.equal(first.status, 201, 'a new interest is created');
  t.equal(first.body.collection, name, 'the name percent-decoded');
  t.ok(Date.parse(first.body.since) > 0, 'since');
  const again = await me('PUT', path(name), '{}');
  t.equal(again.status, 200, 'following again: 200');
  t.same(again.body, first.body, 'the same interest, its first since');
  t.same((await me('GET', '/v1/interests')).body, { items: [first.body], max: MAX }, 'listed once, with the limit');
  t.same((await them('GET', '/v1/interests')).body.items, [], "another buyer's list is their own");
  const { rows } = await sys.pool.query('SELECT collection FROM buyer_interests WHERE buyer_id = $1', [buyer]);
  t.same(rows, [{ collection: name }], 'one row');

  t.equal((await them('DELETE', path(name))).status, 204, 'another buyer unfollowing it changes nothing of mine');
  t.equal((await me('GET', '/v1/interests')).body.items.length, 1);
  const gone = await me('DELETE', path(name));
  t.equal(gone.status, 204);
  t.equal(gone.body, undefined, 'no body');
  t.same((await me('GET', '/v1/interests')).body.items, []);
  t.equal((await me('DELETE', path(name))).status, 204, 'unfollowing again: 204 (already applied)');
});

t.test('names are exact: case, spaces and 200 characters', async (t) => {
  t.equal((await me('PUT', path('a'))).status, 201);
  t.equal((await me('PUT', path('A'))).status, 201, 'another case is another collection');
  t.equal((await me('PUT', path('x'.repeat(200)))).status, 201, '200 characters');
  t.same((await me('GET', '/v1/interests')).body.items.map((i: { collection: string }) => i.collection), ['A', 'a', 'x'.repeat(200)]);
  const over = await me('PUT', path('b'));
  t.equal(over.status, 409, `a fourth past STAMPEDE_MAX_INTERESTS=${MAX}`);
  t.match(over.body, { code: 'LIMIT_REACHED', max: MAX });
  t.equal((await me('PUT', path('a'))).status, 200, 'one followed already is still 200 at the limit');
  t.equal((await them('PUT', path('b'))).status, 201, 'the limit is per buyer');
  for (const c of ['a', 'A', 'x'.repeat(200)]) t.equal((await me('DELETE', path(c))).status, 204);
});

t.test('the limit holds under concurrency', async (t) => {
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => me('PUT', path(`parallel ${i}`))));
  t.equal(answers.filter((a) => a.status === 201).length, MAX, 'at most the limit created');
  t.equal(answers.filter((a) => a.status === 409).length, 20 - MAX, 'the rest refused');
  const { rows } = await sys.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM buyer_interests WHERE buyer_id = $1', [buyer]);
  t.equal(rows[0]!.n, MAX);
  await sys.pool.query('DELETE FROM buyer_interests WHERE buyer_id = $1', [buyer]);
});

t.test('watch a sale, again, unwatch; an unknown sale is 404', async (t) => {
  const sale = await sys.createSale();
  const first = await me('PUT', `/v1/sales/${sale.id}/watch`);
  t.equal(first.status, 201);
  t.match(first.body, { saleId: sale.id, since: String });
  const again = await me('PUT', `/v1/sales/${sale.id}/watch`);
  t.equal(again.status, 200, 'watching again: 200');
  t.same(again.body, first.body);
  t.equal((await them('PUT', `/v1/sales/${sale.id}/watch`)).status, 201);
  t.same(await saleWatchersOf(sys.pool, sale.id), [buyer, other].sort(), 'saleWatchersOf: both, in buyer id order');
  t.same(await saleWatchersOf(sys.pool, sale.id, [buyer, other].sort()[0], 10), [[buyer, other].sort()[1]], 'after a cursor');
  t.equal((await me('DELETE', `/v1/sales/${sale.id}/watch`)).status, 204);
  t.equal((await me('DELETE', `/v1/sales/${sale.id}/watch`)).status, 204, 'unwatching again: 204');
  t.same(await saleWatchersOf(sys.pool, sale.id), [other], 'only mine went');
  for (const method of ['PUT', 'DELETE']) {
    const unknown = await me(method, '/v1/sales/sal_000000000000/watch');
    t.equal(unknown.status, 404, `${method} an unknown sale`);
    t.match(unknown.body, { code: 'NOT_FOUND' });
  }
});
