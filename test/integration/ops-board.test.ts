/**
 * The operators' live board (GET /v1/ops/board, its event stream, the page's
 * files): sales with their counters and decisions by outcome, counted by
 * the api node and summed in Redis; auctions; queues with their rates from
 * the management API; dead letters; each role's heartbeat.
 */
import t from 'tap';
import { boot, call, OPERATOR_KEY, waitFor } from '../helpers/system.js';
import { SseClient } from '../helpers/sse-client.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';
import { saleKeys } from '../../src/sales/keys.js';
import { startRelay } from '../../src/roles/relay.js';
import { createLogger } from '../../src/platform/log.js';
import type { BoardSnapshot } from '../../src/ops/board.js';

const FAST = { STAMPEDE_OPS_BOARD_MS: '200', STAMPEDE_TALLY_FLUSH_MS: '100', STAMPEDE_HEARTBEAT_MS: '200' };

t.test('sales: counters, and every decision by outcome, the sold-out ones answered from memory too', async (t) => {
  const sys = await boot(t, { env: FAST });
  const sale = await sys.createSale({ stock: 3, perBuyerLimit: 1 });
  const [a, b, c, d] = await sys.createBuyers(4);
  const board = async () => (await sys.operator('/v1/ops/board')).body as BoardSnapshot;

  const first = (await board()).sales.find((s) => s.id === sale.id)!;
  t.match(first, { stock: 3, available: 3, reserved: 0, sold: 0, decisions: {} }, 'an untouched sale');

  t.equal((await sys.purchase(a!, sale.id)).status, 202);
  t.equal((await sys.purchase(a!, sale.id)).status, 409, 'a second purchase while the first settles');
  t.equal((await sys.purchase(b!, sale.id)).status, 202);
  t.equal((await sys.purchase(c!, sale.id)).status, 202);
  for (let i = 0; i < 3; i++) t.equal((await sys.purchase(d!, sale.id)).status, 409, 'sold out');

  const seen = await waitFor('the decisions flushed', async () => {
    const s = (await board()).sales.find((x) => x.id === sale.id)!;
    return s.decisions.Applied === 3 && s.decisions.SoldOut === 3 ? s : undefined;
  });
  t.match(seen, { available: 0, reserved: 3, sold: 0, soldOutInSeconds: null }, 'the counters, sold out');
  t.equal(seen.decisions.InProgress, 1, 'the purchase refused while another settles');
  t.equal(Object.values(seen.decisions).reduce((n, v) => n + v, 0), 7, 'every decision counted once');
  // Two of the sold-out refusals were answered from this node's memory, without Redis.
  t.ok(sys.api!.purchases.soldOut.isSoldOut(sale.id), 'this node knows it sold out');
  t.same(await sys.redis.hgetall(saleKeys.outcomes(sale.id)), { 1: '3', '-6': '3', '-8': '1' }, 'as Redis sums them, by outcome code');
  t.ok((await sys.redis.ttl(saleKeys.outcomes(sale.id))) > 0, 'the counts expire');

  // Made-up sale ids leave nothing behind.
  t.equal((await sys.purchase(a!, 'sal_zzzzzzzzzzzz')).status, 404);
  await sys.api!.purchases.flushTally();
  t.equal(await sys.redis.exists(saleKeys.outcomes('sal_zzzzzzzzzzzz')), 0, 'an unknown sale is not counted');
});

t.test('the stream: a snapshot at once, then every interval; numbers move with purchases; only operators', async (t) => {
  const sys = await boot(t, { env: FAST });
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const [a, b] = await sys.createBuyers(2);
  const url = `${sys.url}/v1/ops/board/stream`;

  const none = await SseClient.connect(url, {});
  t.equal(none.status, 401, 'no key');
  t.equal(none.refusal.code, 'UNAUTHORIZED');
  const wrong = await SseClient.connect(url, { 'x-api-key': 'not-a-key' });
  t.equal(wrong.status, 401, 'an unknown key');
  const shop = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Shop' }) })).body;
  const seller = (await sys.operator('/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'seller', userId: shop.id, label: 'a seller' }) })).body;
  const sellers = await SseClient.connect(url, { 'x-api-key': seller.apiKey });
  t.equal(sellers.status, 403, 'a seller key');
  t.equal((await call(`${sys.url}/v1/ops/board`, { headers: { 'x-api-key': seller.apiKey } })).status, 403);

  const stream = await SseClient.connect(url, { 'x-api-key': OPERATOR_KEY });
  t.teardown(() => stream.close());
  t.equal(stream.status, 200);
  const saleIn = (s: BoardSnapshot) => s.sales.find((x) => x.id === sale.id);
  t.equal(saleIn((await stream.next(undefined, 'the first snapshot')).item)?.available, 10, 'the first snapshot');

  t.equal((await sys.purchase(a!, sale.id)).status, 202);
  t.equal((await sys.purchase(b!, sale.id)).status, 202);
  const moved = (await stream.next((s: BoardSnapshot) => saleIn(s)?.available === 8 && saleIn(s)?.decisions.Applied === 2, 'the purchases')).item as BoardSnapshot;
  t.equal(saleIn(moved)!.reserved, 2, 'reserved, live');
  t.ok(moved.outboxBacklog >= 2, 'no relay runs: the accepted purchases wait in the outbox');
  t.equal(sys.api!.eventStreams.count, 1, 'one stream open');

  // A revoked key's stream ends (within the key cache's lifetime).
  const made = (await sys.operator('/v1/ops/keys', { method: 'POST', body: JSON.stringify({ role: 'operator', label: 'revoked soon' }) })).body;
  const doomed = await SseClient.connect(url, { 'x-api-key': made.apiKey });
  await doomed.next(undefined, 'a snapshot');
  t.equal((await sys.operator(`/v1/ops/keys/${made.id}`, { method: 'DELETE' })).status, 204);
  await doomed.waitUntil('the revoked key\'s stream to end', () => doomed.ended, 10_000);
  t.ok(doomed.ended, 'ended');
  stream.close();
  await waitFor('the streams closed', async () => sys.api!.eventStreams.count === 0);
});

t.test('auctions, queues with their rates, dead letters and roles', async (t) => {
  const sys = await boot(t, { env: FAST });
  await waitFor('the api ready', async () => (await call(`${sys.url}/readyz`)).status === 200);
  const lot = await createAuction(sys.pool, sys.redis);
  const [bidder] = await sys.createBuyers(1);
  const bid = await call(`${sys.url}/v1/auctions/${lot.id}/bids`, {
    method: 'POST', headers: { authorization: `Bearer ${sys.token(bidder!)}`, 'content-type': 'application/json' }, body: JSON.stringify({ amount: lot.startPrice }),
  });
  t.equal(bid.status, 202, 'a bid');
  const amqp = await openAmqp(t, sys.cfg);
  const dlq = deadLetterQueue(sys.cfg.topology.orders);
  await amqp.sendToQueue(dlq, JSON.stringify({ a: 'dead letter' }));

  const log = createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'test');
  const relay = await startRelay({ ...sys.cfg, STAMPEDE_HEARTBEAT_MS: 200 }, log);
  let relayStopped = false;
  t.teardown(() => (relayStopped ? undefined : relay.stop()));

  const snapshot = await waitFor('the auction, the dead letter and the relay', async () => {
    const s = (await sys.operator('/v1/ops/board')).body as BoardSnapshot;
    const auction = s.auctions.find((x) => x.id === lot.id);
    const orders = s.deadLetters.queues.find((q) => q.queue === 'orders');
    return auction?.bidCount === 1 && auction.decisions.Applied === 1 && orders?.unarchived === 1 && s.roles.some((r) => r.role === 'relay') ? s : undefined;
  });
  const auction = snapshot.auctions.find((x) => x.id === lot.id)!;
  t.equal(auction.price, lot.startPrice, 'its price');
  t.match(auction.leader, /^bidder-[0-9a-f]{8}$/, 'the leader by handle, not by id');
  t.equal(auction.extendedSeconds, 0, 'not extended');
  // Archived ones other tests left in the shared database are `waiting`: this one is not archived (no keeper runs).
  t.match(snapshot.deadLetters.queues.find((q) => q.queue === 'orders'), { queue: 'orders', unarchived: 1 }, 'in its .dlq, not archived');
  t.ok(snapshot.deadLetters.total >= 1, 'counted in the total');
  const orders = snapshot.queues.find((q) => q.queue === sys.cfg.topology.orders.queue)!;
  t.equal(orders.consumers, 0, 'no worker');
  t.type(orders.inPerSecond, 'number', 'rates from the management API');
  t.type(orders.outPerSecond, 'number');
  t.same(snapshot.problems, [], 'every part read');
  const roles = snapshot.roles.map((r) => r.role).sort();
  t.same(roles, ['api', 'relay'], 'the api and the relay beat');
  t.ok(snapshot.roles.every((r) => r.healthy && r.pid === process.pid), 'healthy, this process');

  relayStopped = true;
  await relay.stop();
  const after = (await sys.operator('/v1/ops/board')).body as BoardSnapshot;
  t.same(after.roles.map((r) => r.role), ['api'], 'a role that stops says so');

  // A role that dies without a word turns silent after three missed beats.
  await sys.redis.hset('stampede:ops:roles', 'worker@elsewhere:1', JSON.stringify({
    role: 'worker', instance: 'worker@elsewhere:1', host: 'elsewhere', pid: 1, startedAt: Date.now() - 60_000, beatAt: Date.now() - 10_000, everyMs: 2_000,
  }));
  const silent = ((await sys.operator('/v1/ops/board')).body as BoardSnapshot).roles.find((r) => r.role === 'worker')!;
  t.notOk(silent.healthy, 'silent');
  t.ok(silent.silentMs >= 10_000);
});

t.test('queue rates without the management API: depths still shown, the problem said', async (t) => {
  const sys = await boot(t, { env: { ...FAST, STAMPEDE_AMQP_MANAGEMENT_URL: 'http://stampede:stampede@127.0.0.1:1' } });
  await waitFor('the api ready', async () => (await call(`${sys.url}/readyz`)).status === 200);
  // Ready means Redis answers; the broker link may still be declaring the topology (GET /v1/ops/queues is 503 until it is up).
  await waitFor('the broker link up', async () => (await sys.operator('/v1/ops/queues')).status === 200);
  const s = (await sys.operator('/v1/ops/board')).body as BoardSnapshot;
  t.ok(s.queues.length > 0, 'the queues');
  t.ok(s.queues.every((q) => q.inPerSecond === null && q.outPerSecond === null), 'no rates');
  t.match(s.problems, [/management API/], 'said');
});

t.test('the page and its files are served, offline', async (t) => {
  const sys = await boot(t);
  const page = await fetch(`${sys.url}/ops`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.equal(page.headers.get('x-frame-options'), 'DENY');
  const html = await page.text();
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((r) => !r.startsWith('data:'));
  t.ok(refs.length >= 4, 'scripts and styles');
  for (const ref of refs) {
    t.ok(ref.startsWith('/ops/'), `${ref} is served here`);
    t.equal((await fetch(`${sys.url}${ref}`)).status, 200, `${ref} answers`);
  }
  t.equal((await fetch(`${sys.url}/ops/other.js`)).status, 404);
});
