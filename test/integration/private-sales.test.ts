/**
 * Private sales: only the buyers on a sale's list see it and buy it. The
 * refusal is the purchase script's own (under concurrency: exactly the
 * listed buyers get stock, nothing is oversold, nobody else is told the sale
 * exists), a changed list holds from the next purchase, and a buyer lists
 * the private sales they may buy.
 */
import t from 'tap';
import { boot, call, type HttpAnswer } from '../helpers/system.js';
import { saleKeys } from '../../src/sales/keys.js';
import { readLiveSale } from '../../src/sales/scripts.js';

const sys = await boot(t, { relay: true, worker: true });
const seller = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Private shop' }) })).body as { id: string; apiKey: string };
const rival = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Rival' }) })).body as { id: string; apiKey: string };
const asSeller = (key: string, path: string, init: RequestInit = {}): Promise<HttpAnswer> =>
  call(`${sys.url}${path}`, { ...init, headers: { 'x-api-key': key, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
const asBuyer = (buyerId: string, path: string) => call(`${sys.url}${path}`, { headers: { authorization: `Bearer ${sys.token(buyerId)}` } });
const terms = (over: Record<string, unknown>) => ({
  name: 'Members only', sku: 'PRIV-1', unitPrice: 1500, currency: 'EUR', stock: 10, perBuyerLimit: 1,
  startsAt: new Date(Date.now() - 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), ...over,
});
const createPrivate = async (over: Record<string, unknown>) => {
  const a = await asSeller(seller.apiKey, '/v1/sales', { method: 'POST', body: JSON.stringify(terms(over)) });
  if (a.status !== 201) throw new Error(`create: ${a.status} ${JSON.stringify(a.body)}`);
  return a.body as { id: string; private: boolean };
};

t.test('many parallel purchases by listed and unlisted buyers: exactly the listed get stock, never oversold', async (t) => {
  const listed = await sys.createBuyers(60);
  const strangers = await sys.createBuyers(60);
  const sale = await createPrivate({ stock: 40, eligibleBuyers: listed });
  t.equal(sale.private, true);

  const everyone = listed.flatMap((b, i) => [b, strangers[i]!]);
  const answers = await Promise.all(everyone.map((b) => sys.purchase(b, sale.id)));
  const by = (group: string[]) => answers.filter((_, i) => group.includes(everyone[i]!));
  const statuses = (as: HttpAnswer[]) => as.map((a) => `${a.status} ${a.body?.code ?? ''}`.trim()).sort();
  t.same(statuses(by(listed)), [...Array(40).fill('202'), ...Array(20).fill('409 SOLD_OUT')].sort(), '40 listed buyers bought, 20 found it sold out');
  t.same(statuses(by(strangers)), Array(60).fill('404 NOT_FOUND'), 'every unlisted buyer was told there is no such sale');
  t.same(await readLiveSale(sys.redis, sale.id), { status: 'open', stock: 40, available: 0, reserved: 40, sold: 0 }, 'never oversold');
  const again = await sys.purchase(strangers[0]!, sale.id);
  t.equal(again.status, 404, 'sold out, it still does not exist for a stranger (no sold-out answer from memory)');

  await sys.drained(sale.id);
  const { rows } = await sys.pool.query<{ buyer_id: string; status: string }>('SELECT buyer_id, status FROM orders WHERE sale_id = $1', [sale.id]);
  t.equal(rows.length, 40, 'one order per accepted purchase');
  t.ok(rows.every((r) => listed.includes(r.buyer_id) && r.status === 'confirmed'), 'all confirmed, all to listed buyers');
  t.same(await readLiveSale(sys.redis, sale.id), { status: 'open', stock: 40, available: 0, reserved: 0, sold: 40 });
});

t.test('who sees a private sale; the buyer\'s list of private sales', async (t) => {
  const [member, outsider] = await sys.createBuyers(2);
  const sale = await createPrivate({ sku: 'PRIV-2', eligibleBuyers: [member] });
  const other = await createPrivate({ sku: 'PRIV-3', eligibleBuyers: [outsider] });
  const path = `/v1/sales/${sale.id}`;
  t.equal((await call(`${sys.url}${path}`)).status, 404, 'anonymous: 404');
  t.equal((await asBuyer(outsider!, path)).status, 404, 'an unlisted buyer: 404');
  t.equal((await call(`${sys.url}${path}`, { headers: { authorization: 'Bearer not.a.token' } })).status, 404, 'a token that does not verify: 404');
  t.equal((await asSeller(rival.apiKey, path)).status, 404, 'another seller: 404');
  t.equal((await asSeller('wrong-key', path)).status, 404, 'an unknown key: 404');
  const seen = await asBuyer(member!, path);
  t.equal(seen.status, 200, 'a listed buyer sees it');
  t.match(seen.body, { id: sale.id, private: true, bundle: null, unitPrice: 1500 });
  t.equal((await asSeller(seller.apiKey, path)).status, 200, 'its seller sees it');
  t.equal((await sys.operator(path)).status, 200, 'an operator sees it');

  const publicSale = await sys.createSale({ sku: 'PUB-1' });
  // The shared test database holds other tests' open sales: read every page.
  const publicIds: string[] = [];
  for (let after = ''; ;) {
    const page = (await call(`${sys.url}/v1/sales?limit=100${after ? `&after=${after}` : ''}`)).body;
    publicIds.push(...page.items.map((s: { id: string }) => s.id));
    if (!page.next) break;
    after = page.next;
  }
  t.ok(publicIds.includes(publicSale.id), 'the public list has the public sale');
  t.notOk(publicIds.includes(sale.id) || publicIds.includes(other.id), 'and no private one');
  t.equal((await call(`${sys.url}/v1/sales/${publicSale.id}`)).body.private, false, 'a public sale is seen by anyone');

  const mine = await asBuyer(member!, '/v1/sales?eligible=true');
  t.equal(mine.status, 200);
  t.same(mine.body.items.map((s: { id: string }) => s.id), [sale.id], 'a buyer lists only the private sales they may buy');
  t.same((await asBuyer(outsider!, '/v1/sales?eligible=true')).body.items.map((s: { id: string }) => s.id), [other.id]);
  const stranger = (await sys.createBuyers(1))[0]!;
  t.same((await asBuyer(stranger, '/v1/sales?eligible=true')).body, { items: [], next: null }, 'nobody\'s list: empty');
  t.equal((await call(`${sys.url}/v1/sales?eligible=true`)).status, 401, 'eligible=true needs a buyer');
});

t.test('a changed list holds from the next purchase', async (t) => {
  const [first, second, third] = await sys.createBuyers(3);
  const sale = await createPrivate({ sku: 'PRIV-4', stock: 10, eligibleBuyers: [first] });
  const listPath = `/v1/sales/${sale.id}/eligible-buyers`;
  t.equal((await sys.purchase(second!, sale.id)).status, 404, 'not listed yet');
  t.same((await asSeller(seller.apiKey, listPath)).body, { saleId: sale.id, buyerIds: [first] });

  const changed = await asSeller(seller.apiKey, listPath, { method: 'PUT', body: JSON.stringify({ buyerIds: [third, second] }) });
  t.equal(changed.status, 200);
  t.same(changed.body, { saleId: sale.id, buyerIds: [second, third].sort() });
  t.equal((await sys.purchase(second!, sale.id)).status, 202, 'newly listed: buys at once');
  t.equal((await sys.purchase(first!, sale.id)).status, 404, 'taken off: refused at once');
  t.equal((await asBuyer(first!, `/v1/sales/${sale.id}`)).status, 404, 'and no longer sees it');
  t.same((await asSeller(seller.apiKey, listPath)).body.buyerIds, [second, third].sort());
  const { rows } = await sys.pool.query('SELECT buyer_id FROM sale_eligible_buyers WHERE sale_id = $1 ORDER BY buyer_id', [sale.id]);
  t.same(rows.map((r) => r.buyer_id), [second, third].sort(), 'the record holds the same list');

  t.equal((await sys.operator(listPath, { method: 'PUT', body: JSON.stringify({ buyerIds: [] }) })).status, 200, 'an operator empties it');
  t.equal((await sys.purchase(third!, sale.id)).status, 404, 'nobody may buy');

  // Redis loses the sale: it is loaded again from Postgres with its list.
  await sys.operator(listPath, { method: 'PUT', body: JSON.stringify({ buyerIds: [third] }) });
  await sys.redis.del(saleKeys.sale(sale.id), saleKeys.eligible(sale.id));
  t.equal((await sys.purchase(first!, sale.id)).status, 404, 'reloaded: an unlisted buyer is still refused');
  t.equal(await sys.redis.sismember(saleKeys.eligible(sale.id), third!), 1, 'the list came back with the sale');
  t.equal((await sys.purchase(third!, sale.id)).status, 202, 'and a listed one buys');
});
