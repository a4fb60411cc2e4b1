/**
 * Fault: a client (or a retrying proxy) sends the same Idempotency-Key from
 * 50 parallel requests. With the same body, exactly one thing is made and
 * every answer names it; with 50 different bodies, one request wins and
 * every other is a 422 that changed nothing. For purchases (the key lives in
 * Redis, decided by reservePurchases, batched per sale per event-loop turn),
 * bids (placeBids, batched per event-loop turn: one call may hold all 50) and an operator POST whose key lives in
 * Postgres (a wallet credit: money, where a double would hurt most).
 */
import t from 'tap';
import { boot, call, OPERATOR_KEY, type HttpAnswer } from '../helpers/system.js';
import { faultEnv, orderCount, statusCounts } from '../helpers/fault-kit.js';
import { readLiveSale } from '../../src/sales/scripts.js';
import { readLiveAuction } from '../../src/auctions/scripts.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { createAuction } from '../helpers/auctions.js';

const N = 50;

const parallel = (n: number, send: (i: number) => Promise<HttpAnswer>) => Promise.all(Array.from({ length: n }, (_, i) => send(i)));

t.test('50 parallel requests with one Idempotency-Key', async (t) => {
  // Bids and purchases are rate limited per buyer (10 a second by default): a replay and a key reused with
  // another body are decided before the limit, so the limit must not decide this test either way.
  const sys = await boot(t, { relay: true, worker: true, env: faultEnv() });

  t.test('a purchase, the same body: one purchase, every answer names it, even once it sold the sale out', async (t) => {
    // One unit: the winner sells the sale out, and the api's sold-out memory must not answer the replays.
    const sale = await sys.createSale({ stock: 1, perBuyerLimit: 1 });
    const [buyer] = await sys.createBuyers(1);
    const answers = await parallel(N, () => sys.purchase(buyer!, sale.id, { quantity: 1 }, { 'idempotency-key': 'same-body' }));
    t.same(statusCounts(answers), { 202: N }, 'every answer is 202');
    const ids = new Set(answers.map((a) => a.body.purchaseId));
    t.equal(ids.size, 1, 'every answer names the same purchase');
    t.equal(answers.filter((a) => a.headers.get('idempotent-replayed') !== 'true').length, 1, 'one made it, the rest are replays');
    await sys.drained(sale.id, 20_000);
    t.equal(await orderCount(sys.pool, sale.id), 1, 'one order');
    t.same(await readLiveSale(sys.redis, sale.id), { status: 'open', stock: 1, available: 0, reserved: 0, sold: 1 });
    // A late retry, after settlement, still names it.
    const late = await sys.purchase(buyer!, sale.id, { quantity: 1 }, { 'idempotency-key': 'same-body' });
    t.equal(late.status, 202);
    t.equal(late.body.purchaseId, [...ids][0]);
  });

  t.test('a purchase, 50 different bodies: one wins, 49 are 422 and change nothing', async (t) => {
    const sale = await sys.createSale({ stock: 1000, perBuyerLimit: 100 });
    const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 10_000_000 });
    const answers = await parallel(N, (i) => sys.purchase(buyer!, sale.id, { quantity: i + 1 }, { 'idempotency-key': 'other-bodies' }));
    t.same(statusCounts(answers), { 202: 1, 422: N - 1 }, 'one 202, the rest 422');
    const winner = answers.find((a) => a.status === 202)!;
    const quantity = answers.indexOf(winner) + 1;
    t.ok(answers.filter((a) => a.status === 422).every((a) => a.body.code === 'IDEMPOTENCY_KEY_REUSED'), 'each 422 says the key was reused');
    await sys.drained(sale.id, 20_000);
    t.equal(await orderCount(sys.pool, sale.id), 1, 'one order');
    const { rows } = await sys.pool.query<{ quantity: number }>('SELECT quantity FROM orders WHERE sale_id = $1', [sale.id]);
    t.same(rows, [{ quantity }], "the order is the winner's");
    t.same(await readLiveSale(sys.redis, sale.id), { status: 'open', stock: 1000, available: 1000 - quantity, reserved: 0, sold: quantity });
  });

  const bid = (buyer: string, auctionId: string, amount: number, key: string) => call(`${sys.url}/v1/auctions/${auctionId}/bids`, {
    method: 'POST', body: JSON.stringify({ amount }),
    headers: { authorization: `Bearer ${sys.token(buyer)}`, 'content-type': 'application/json', 'idempotency-key': key },
  });

  t.test('a bid, the same body: one bid, every answer names it', async (t) => {
    const a = await createAuction(sys.pool, sys.redis);
    const [buyer] = await sys.createBuyers(1);
    const answers = await parallel(N, () => bid(buyer!, a.id, 1500, 'same-bid'));
    t.same(statusCounts(answers), { 202: N }, 'every answer is 202');
    t.equal(new Set(answers.map((x) => x.body.bidId)).size, 1, 'every answer names the same bid');
    t.equal(answers.filter((x) => x.headers.get('idempotent-replayed') !== 'true').length, 1, 'one made it, the rest are replays');
    t.equal(await sys.redis.zcard(auctionKeys.history(a.id)), 1, 'one bid in the history');
    t.match(await readLiveAuction(sys.redis, a.id), { price: 1500, bidCount: 1 });
  });

  t.test('a bid, 50 different bodies: one wins, 49 are 422 and change nothing', async (t) => {
    const a = await createAuction(sys.pool, sys.redis);
    const [buyer] = await sys.createBuyers(1);
    const answers = await parallel(N, (i) => bid(buyer!, a.id, 1000 + 100 * i, 'other-bids'));
    t.same(statusCounts(answers), { 202: 1, 422: N - 1 }, 'one 202, the rest 422');
    t.ok(answers.filter((x) => x.status === 422).every((x) => x.body.code === 'IDEMPOTENCY_KEY_REUSED'), 'each 422 says the key was reused');
    const amount = 1000 + 100 * answers.findIndex((x) => x.status === 202);
    t.equal(await sys.redis.zcard(auctionKeys.history(a.id)), 1, 'one bid in the history');
    t.match(await readLiveAuction(sys.redis, a.id), { price: amount, bidCount: 1 }, "the winner's amount");
  });

  const credit = (buyer: string, amount: number, key: string) => call(`${sys.url}/v1/buyers/${buyer}/credits`, {
    method: 'POST', body: JSON.stringify({ currency: 'EUR', amount }),
    headers: { 'x-api-key': OPERATOR_KEY, 'content-type': 'application/json', 'idempotency-key': key },
  });
  const ledgerOf = async (buyer: string) => (await sys.pool.query<{ amount: number }>(
    "SELECT amount::int FROM ledger_entries WHERE user_id = $1 AND kind = 'credit'", [buyer])).rows;

  t.test('an operator credit (Postgres idempotency), the same body: credited once; each answer names it or says it is in progress', async (t) => {
    const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 0 });
    const answers = await parallel(N, () => credit(buyer!, 700, 'same-credit'));
    const counts = statusCounts(answers);
    t.equal(counts[201], answers.filter((a) => a.status === 201).length);
    t.same(Object.keys(counts).filter((s) => s !== '201' && s !== '409'), [], 'only 201 and 409 (in progress)', { counts });
    const made = answers.filter((a) => a.status === 201);
    t.equal(made.filter((a) => a.headers.get('idempotent-replayed') !== 'true').length, 1, 'one credit made, the other 201s are replays');
    t.ok(made.every((a) => a.body.credited === 700 && a.body.balance === 700), 'every 201 names the one credit');
    t.ok(answers.filter((a) => a.status === 409).every((a) => a.body.code === 'IDEMPOTENCY_IN_PROGRESS' && a.headers.get('retry-after') === '1'),
      'every 409 says in progress, with Retry-After');
    t.comment(`answers: ${JSON.stringify(counts)}`);
    // The 409s retried once it is done: each is a replay.
    const retried = await parallel(counts[409] ?? 0, () => credit(buyer!, 700, 'same-credit'));
    t.ok(retried.every((a) => a.status === 201 && a.headers.get('idempotent-replayed') === 'true' && a.body.balance === 700), 'each retry replays it');
    t.same(await ledgerOf(buyer!), [{ amount: 700 }], 'one ledger entry');
    const { rows } = await sys.pool.query<{ balance: number }>("SELECT balance::int FROM wallets WHERE user_id = $1 AND currency = 'EUR'", [buyer]);
    t.same(rows, [{ balance: 700 }], 'balance 700');
  });

  t.test('an operator credit, 50 different bodies: one credited, 49 are 422 and change nothing', async (t) => {
    const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 0 });
    const answers = await parallel(N, (i) => credit(buyer!, 100 + i, 'other-credits'));
    t.same(statusCounts(answers), { 201: 1, 422: N - 1 }, 'one 201, the rest 422');
    t.ok(answers.filter((a) => a.status === 422).every((a) => a.body.code === 'IDEMPOTENCY_KEY_REUSED'), 'each 422 says the key was reused');
    const amount = 100 + answers.findIndex((a) => a.status === 201);
    t.same(await ledgerOf(buyer!), [{ amount }], "one ledger entry, the winner's");
    const { rows } = await sys.pool.query<{ balance: number }>("SELECT balance::int FROM wallets WHERE user_id = $1 AND currency = 'EUR'", [buyer]);
    t.same(rows, [{ balance: amount }]);
  });
});
