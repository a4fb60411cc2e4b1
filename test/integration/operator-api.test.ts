/**
 * Operators and sellers: buyers (one and batch), wallets and credits,
 * sellers and their keys, and the sale lifecycle (create, read, list,
 * add stock, close), with seller scoping and idempotency.
 */
import t from 'tap';
import { boot, call, waitFor, type System } from '../helpers/system.js';
import { saleKeys } from '../../src/sales/keys.js';

const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();
const saleBody = (over: Record<string, unknown> = {}) => ({
  name: 'Drop', sku: 'SKU-1', unitPrice: 1500, currency: 'EUR', stock: 2, perBuyerLimit: 1,
  startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: inAnHour(), ...over,
});

t.test('buyers, batches, wallets and credits', async (t) => {
  const sys = await boot(t);
  const one = await sys.operator('/v1/buyers', { method: 'POST', body: JSON.stringify({ name: 'Ada', email: `ada-${Date.now()}@x.io` }) });
  t.equal(one.status, 201);
  t.match(one.body, { id: /^usr_[0-9a-z]{12}$/, name: 'Ada' });
  const batch = await sys.operator('/v1/buyers/batch', { method: 'POST', body: JSON.stringify({ buyers: Array.from({ length: 300 }, (_, i) => ({ name: `b${i}` })) }) });
  t.equal(batch.status, 201);
  t.equal(batch.body.buyers.length, 300);
  t.equal(new Set(batch.body.buyers.map((b: { id: string }) => b.id)).size, 300, 'distinct ids');

  const id = one.body.id as string;
  const credit = (currency: string, amount: number, key?: string) =>
    sys.operator(`/v1/buyers/${id}/credits`, { method: 'POST', body: JSON.stringify({ currency, amount }), headers: key ? { 'idempotency-key': key } : {} });
  t.match((await credit('EUR', 1000, 'c1')).body, { balance: 1000 });
  const replay = await credit('EUR', 1000, 'c1');
  t.match(replay.body, { balance: 1000 }, 'the same key credits once');
  t.equal(replay.headers.get('idempotent-replayed'), 'true');
  t.equal((await credit('EUR', 5, 'c1')).status, 422, 'same key, other body');
  t.match((await credit('EUR', 250)).body, { balance: 1250 });
  t.match((await credit('USD', 99)).body, { balance: 99 }, 'several currencies per buyer');
  const wallet = await sys.operator(`/v1/buyers/${id}/wallet`);
  t.same(wallet.body, { userId: id, balances: [{ currency: 'EUR', balance: 1250 }, { currency: 'USD', balance: 99 }] });
  const own = await call(`${sys.url}/v1/wallet`, { headers: { authorization: `Bearer ${sys.token(id)}` } });
  t.same(own.body, wallet.body, 'the buyer reads their own wallet');
  const { rows } = await sys.pool.query('SELECT sum(amount)::bigint AS s FROM ledger_entries WHERE user_id = $1 AND currency = $2', [id, 'EUR']);
  t.equal(rows[0].s, 1250, 'the ledger adds up to the balance');
  t.equal((await sys.operator('/v1/buyers/usr_000000000000/wallet')).status, 404);
  t.equal((await sys.operator('/v1/buyers/usr_000000000000/credits', { method: 'POST', body: JSON.stringify({ currency: 'EUR', amount: 1 }) })).status, 404);
});

t.test('sales: create, read, list, add stock, close; sellers see only their own', async (t) => {
  const sys = await boot(t);
  const seller = await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Shop' }), headers: { 'idempotency-key': `s-${Date.now()}` } });
  t.equal(seller.status, 201);
  t.match(seller.body, { id: /^usr_/, apiKey: /^stk_sl_/ });
  const { rows } = await sys.pool.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE response::text LIKE $1', [`%${seller.body.apiKey}%`]);
  t.equal(rows[0].n, 0, 'the key is never stored in clear, not even for replays');
  for (const bad of [{}, { name: '' }, { name: 'x'.repeat(201) }, { name: 'Shop', role: 'operator' }, { name: 'Sh\u0000op' }, { name: 'Shop', email: 'not-an-email' }]) {
    const r = await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify(bad) });
    t.equal(r.status, 400, `POST /v1/sellers ${JSON.stringify(bad)} -> 400`);
    t.equal(r.body.code, 'VALIDATION_FAILED');
  }
  const email = `shop-${Date.now()}@x.io`;
  t.equal((await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'A', email }) })).status, 201);
  const twin = await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'B', email }) });
  t.equal(twin.status, 409, 'a second seller with the same email is a conflict');
  t.equal(twin.body.code, 'CONFLICT');
  const asSeller = (path: string, init: RequestInit = {}, key = seller.body.apiKey as string) =>
    call(`${sys.url}${path}`, { ...init, headers: { 'x-api-key': key, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

  const created = await asSeller('/v1/sales', { method: 'POST', body: JSON.stringify(saleBody()) });
  t.equal(created.status, 201);
  t.match(created.body, { id: /^sal_/, sellerId: seller.body.id, status: 'open', stock: 2, live: { stock: 2, available: 2, reserved: 0, sold: 0 } });
  const saleId = created.body.id as string;
  t.equal(await sys.redis.sismember('stampede:outboxes', saleKeys.outbox(saleId)), 1, 'the relay will drain its outbox');

  const read = await call(`${sys.url}/v1/sales/${saleId}`);
  t.match(read.body, { id: saleId, name: 'Drop', unitPrice: 1500, currency: 'EUR' });

  const later = await sys.operator('/v1/sales', { method: 'POST', body: JSON.stringify(saleBody({ startsAt: inAnHour(), endsAt: new Date(Date.now() + 7200_000).toISOString() })) });
  t.equal(later.body.status, 'scheduled');
  const page1 = await call(`${sys.url}/v1/sales?limit=1`);
  t.equal(page1.body.items.length, 1);
  t.type(page1.body.next, 'string');
  const all: string[] = [];
  for (let after: string | null = null, guard = 0; guard < 100; guard++) {
    const page: { body: { items: { id: string }[]; next: string | null } } = await call(`${sys.url}/v1/sales?limit=100${after ? `&after=${after}` : ''}`);
    all.push(...page.body.items.map((s) => s.id));
    after = page.body.next;
    if (!after) break;
  }
  t.ok(all.includes(saleId) && all.includes(later.body.id), 'both active sales are listed');
  t.equal(new Set(all).size, all.length, 'no sale twice across pages');

  // Sell out, then add stock: the api's sold-out cache must not hold buyers off.
  const buyers = await sys.createBuyers(3);
  t.equal((await sys.purchase(buyers[0]!, saleId)).status, 202);
  t.equal((await sys.purchase(buyers[1]!, saleId)).status, 202);
  t.equal((await sys.purchase(buyers[2]!, saleId)).body.code, 'SOLD_OUT');
  const added = await asSeller(`/v1/sales/${saleId}/stock`, { method: 'POST', body: JSON.stringify({ units: 3 }) });
  t.equal(added.status, 200);
  t.match(added.body, { stock: 5, live: { stock: 5, available: 3, reserved: 2 } });
  t.equal((await sys.purchase(buyers[2]!, saleId)).status, 202, 'stock back: the sold-out cache was cleared at once');

  const other = await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Rival' }) });
  t.equal((await asSeller(`/v1/sales/${saleId}/stock`, { method: 'POST', body: JSON.stringify({ units: 1 }) }, other.body.apiKey)).status, 404, "a seller cannot touch another's sale");
  t.equal((await asSeller(`/v1/sales/${saleId}/close`, { method: 'POST' }, other.body.apiKey)).status, 404);
  t.equal((await asSeller('/v1/buyers', { method: 'POST', body: JSON.stringify({ name: 'x' }) })).status, 403, 'sellers do not manage buyers');
  t.equal((await asSeller('/v1/ops/queues')).status, 403);

  const closed = await asSeller(`/v1/sales/${saleId}/close`, { method: 'POST' });
  t.equal(closed.status, 200);
  t.equal(closed.body.status, 'closed');
  const [late] = await sys.createBuyers(1);
  t.equal((await sys.purchase(late!, saleId)).body.code, 'SALE_ENDED', 'closed early: no more purchases');
  t.equal((await asSeller(`/v1/sales/${saleId}/stock`, { method: 'POST', body: JSON.stringify({ units: 1 }) })).body.code, 'SALE_ENDED');
  const listed = await call(`${sys.url}/v1/sales?limit=100`);
  t.notOk(listed.body.items.some((s: { id: string }) => s.id === saleId), 'a closed sale is not listed as active');
});

t.test('a sale Redis lost is rebuilt from Postgres on first use', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 3, perBuyerLimit: 1 });
  const buyers = await sys.createBuyers(4);
  t.equal((await sys.purchase(buyers[0]!, sale.id)).status, 202);
  await sys.drained(sale.id);
  // Redis loses the sale (a flush, a failover to an empty replica).
  await sys.redis.del(saleKeys.sale(sale.id), saleKeys.bought(sale.id));
  t.equal((await sys.purchase(buyers[0]!, sale.id)).body.code, 'LIMIT_REACHED', 'per-buyer counts come back from the orders');
  t.equal((await sys.purchase(buyers[1]!, sale.id)).status, 202);
  t.equal((await sys.purchase(buyers[2]!, sale.id)).status, 202);
  t.equal((await sys.purchase(buyers[3]!, sale.id)).body.code, 'SOLD_OUT', 'sold units stay sold');
});

t.test('a settled purchase Redis lost is still answered, from Postgres', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 3, perBuyerLimit: 1, unitPrice: 900 });
  const [buyer, other] = await sys.createBuyers(2);
  const a = await sys.purchase(buyer!, sale.id);
  await sys.drained(sale.id);
  await sys.redis.del(saleKeys.purchase(sale.id, a.body.purchaseId));
  const got = await call(`${sys.url}${a.body.statusUrl}`, { headers: { authorization: `Bearer ${sys.token(buyer!)}` } });
  t.equal(got.status, 200);
  t.match(got.body, { purchaseId: a.body.purchaseId, saleId: sale.id, quantity: 1, amount: 900, currency: 'EUR', status: 'confirmed' });
  const foreign = await call(`${sys.url}${a.body.statusUrl}`, { headers: { authorization: `Bearer ${sys.token(other!)}` } });
  t.equal(foreign.status, 404, 'still only its buyer sees it');
});

t.test('ops view: queues, dead letters and outbox backlog', async (t) => {
  const sys = await boot(t);
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const buyers = await sys.createBuyers(4);
  for (const b of buyers) await sys.purchase(b, sale.id);
  // The queue view reads the broker through the api's own link, which connects in the background after the api is ready.
  await brokerLinkUp(sys);
  const ops = await sys.operator('/v1/ops/queues');
  t.equal(ops.status, 200);
  const kinds = ops.body.queues.map((q: { kind: string }) => q.kind);
  t.ok(kinds.includes('main') && kinds.includes('retry') && kinds.includes('dead-letter'));
  const outbox = ops.body.outboxes.find((o: { stream: string }) => o.stream === saleKeys.outbox(sale.id));
  t.match(outbox, { length: 4, unread: 4, pending: 0 }, 'no relay runs: four entries wait unread');
  t.ok(ops.body.outboxBacklog >= 4);
  t.equal((await call(`${sys.url}/v1/ops/queues`, { headers: { authorization: `Bearer ${sys.token(buyers[0]!)}` } })).status, 401);
});

t.test('the queue view shows what waits in the Postgres outbox, and how old it is', async (t) => {
  // The api's relay of event_outbox polls once a minute here, so a row written behind its back waits for the test.
  const sys = await boot(t, { env: { STAMPEDE_EVENT_OUTBOX_POLL_MS: '60000' } });
  await brokerLinkUp(sys);
  const pgOutbox = async () => (await sys.operator('/v1/ops/queues')).body.outboxes.find((o: { stream: string }) => o.stream === 'postgres:event_outbox');
  t.match(await pgOutbox(), { length: 0, unread: 0, pending: 0, oldestAgeMs: 0 }, 'nothing waits');
  const event = { specversion: '1.0', id: 'ops-view-test', source: 'test', type: 'stampede.sale.updated.v1', time: new Date().toISOString(), data: {} };
  await sys.pool.query("INSERT INTO event_outbox (event_id, event, created_at) VALUES ($1, $2, now() - interval '5 seconds'), ($1, $2, now())", [event.id, event]);
  t.teardown(() => sys.pool.query("DELETE FROM event_outbox WHERE event_id = 'ops-view-test'").then(() => undefined));
  const waiting = await pgOutbox();
  t.match(waiting, { length: 2, unread: 2, pending: 0 }, 'two rows wait for the relay');
  t.ok(waiting.oldestAgeMs >= 5_000 && waiting.oldestAgeMs < 60_000, `the oldest is 5 s old (${waiting.oldestAgeMs} ms)`);
  t.ok((await sys.operator('/v1/ops/queues')).body.outboxBacklog >= 2, 'and counts in the backlog');
});

/** Ready means Redis answers; GET /v1/ops/queues is 503 until the api's broker link has connected and declared the topology. */
async function brokerLinkUp(sys: System): Promise<void> {
  await waitFor('the api ready', async () => (await call(`${sys.url}/readyz`)).status === 200);
  await waitFor('the broker link up', async () => (await sys.operator('/v1/ops/queues')).status === 200);
}
