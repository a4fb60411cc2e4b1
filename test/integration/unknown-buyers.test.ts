/**
 * A validly signed token whose `sub` is no user is refused at the api (401),
 * on the purchase and bid paths too, and changes nothing; a buyer created
 * behind the api's back (straight into Postgres, or on another node) is
 * looked up once and buys; WebSocket authentication refuses the stranger too.
 */
import t from 'tap';
import { boot, call, waitFor } from '../helpers/system.js';
import { problem } from '../helpers/problem.js';
import { LiveClient } from '../helpers/live-client.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { newUserId } from '../../src/platform/ids.js';
import { readLiveSale } from '../../src/sales/scripts.js';
import { createAuction } from '../helpers/auctions.js';
import { KnownBuyers } from '../../src/buyers/known-buyers.js';
import { createPool } from '../../src/platform/db/pool.js';
import { createLogger } from '../../src/platform/log.js';

const sys = await boot(t, { relay: false });
const sale = await sys.createSale({ stock: 10, perBuyerLimit: 1 });

t.test('a token naming no user: 401 on a purchase, nothing reserved, and again from memory', async (t) => {
  const stranger = newUserId();
  const before = await readLiveSale(sys.redis, sale.id);
  for (let i = 0; i < 3; i++) {
    const a = await sys.purchase(stranger, sale.id, { quantity: 1 });
    problem(t, a, 401, 'UNAUTHORIZED', `attempt ${i + 1}`);
    t.equal(a.body.detail, 'this token names no buyer');
  }
  t.same(await readLiveSale(sys.redis, sale.id), before, 'nothing reserved');
  t.equal(await sys.redis.hget(`{sale:${sale.id}}:inflight`, stranger), null, 'no purchase in flight');
  const wallet = await call(`${sys.url}/v1/wallet`, { headers: { authorization: `Bearer ${sys.token(stranger)}` } });
  problem(t, wallet, 401, 'UNAUTHORIZED', 'the wallet');
});

t.test('a buyer created behind the api\'s back is looked up and buys; so do many at once', async (t) => {
  const [late] = await createBuyers(sys.pool, [{ name: 'created after the api started' }]);
  const a = await sys.purchase(late!.id, sale.id, { quantity: 1 });
  t.equal(a.status, 202, 'accepted after one lookup');
  const many = await createBuyers(sys.pool, Array.from({ length: 40 }, (_, i) => ({ name: `late ${i}` })));
  const wide = await sys.createSale({ stock: 100, perBuyerLimit: 1 });
  const answers = await Promise.all(many.map((b) => sys.purchase(b.id, wide.id, { quantity: 1 })));
  t.same(answers.map((x) => x.status), Array(40).fill(202), 'looked up together, each accepted');
});

t.test('a buyer created through this api is known at once', async (t) => {
  const created = await sys.operator('/v1/buyers', { method: 'POST', body: JSON.stringify({ name: 'made here' }) });
  t.equal(created.status, 201);
  t.equal((await sys.purchase(created.body.id, sale.id, { quantity: 1 })).status, 202);
});

t.test('a bid and a WebSocket authentication by a token naming no user are refused', async (t) => {
  const stranger = newUserId();
  const auction = await createAuction(sys.pool, sys.redis);
  const bid = await call(`${sys.url}/v1/auctions/${auction.id}/bids`, {
    method: 'POST', headers: { authorization: `Bearer ${sys.token(stranger)}`, 'content-type': 'application/json' }, body: JSON.stringify({ amount: auction.startPrice + 500 }),
  });
  problem(t, bid, 401, 'UNAUTHORIZED', 'the bid');
  const live = await LiveClient.connect(sys.url);
  t.teardown(() => live.close());
  live.send({ op: 'auth', token: sys.token(stranger) });
  const frame = await live.next();
  t.match(frame, { op: 'error', code: 'UNAUTHORIZED' }, 'the live connection refuses it');
  await waitFor('the api still answering', async () => (await call(`${sys.url}/healthz`)).status === 200);
});

t.test('KnownBuyers: one query per turn for many ids; an unknown id remembered; Postgres unreachable lets buyers through', async (t) => {
  const known = new KnownBuyers(sys.pool, createLogger('silent', 'test'), 1_000);
  const made = await createBuyers(sys.pool, Array.from({ length: 5 }, (_, i) => ({ name: `lookup ${i}` })));
  const stranger = newUserId();
  const answers = await Promise.all([...made.map((b) => known.lookup(b.id)), known.lookup(stranger), known.lookup(made[0]!.id)]);
  t.same(answers, [true, true, true, true, true, false, true]);
  t.equal(known.lookups, 1, 'one query for the turn');
  t.equal(known.status(made[0]!.id), true, 'the found remembered');
  t.equal(known.status(stranger), false, 'the stranger remembered as none');
  t.equal(known.status(newUserId()), undefined, 'an id never asked: unknown either way');

  const away = createPool('postgres://stampede:stampede@127.0.0.1:1/nowhere', 1);
  t.teardown(() => away.end());
  const blind = new KnownBuyers(away, createLogger('silent', 'test'), 1_000);
  t.equal(await blind.lookup(newUserId()), true, 'let through');
  t.equal(blind.letThrough, 1, 'and counted');
  t.equal(blind.status(stranger), undefined, 'nothing remembered from a failed lookup');
});

t.test('a buyer looked up on a sale this node knows sold out gets SOLD_OUT as a problem, like anyone', async (t) => {
  const tiny = await sys.createSale({ stock: 1, perBuyerLimit: 1 });
  const [first] = await sys.createBuyers(1);
  t.equal((await sys.purchase(first!, tiny.id, { quantity: 1 })).status, 202);
  const [late] = await createBuyers(sys.pool, [{ name: 'late to a sold-out sale' }]);
  problem(t, await sys.purchase(late!.id, tiny.id, { quantity: 1 }), 409, 'SOLD_OUT', 'answered from memory after the lookup');
});
