/**
 * The live endpoint, ws /v1/live, against real api nodes, Redis pub/sub and
 * purchases through the HTTP API. "Nothing arrived" is proved by order, not
 * by the clock: a later frame, or the answer to a later operation, arrives
 * after everything the server sent before it.
 */
import t, { type Test } from 'tap';
import uWS from 'uWebSockets.js';
import { boot, holdToDocument, waitFor, type System } from '../helpers/system.js';
import { LiveClient } from '../helpers/live-client.js';
import { createLogger } from '../../src/platform/log.js';
import { startApi } from '../../src/roles/index.js';
import { LIVE_CHANNEL } from '../../src/live/keys.js';
import { LiveHub, type LiveHubOptions } from '../../src/live/hub.js';
import { randomId } from '../../src/platform/ids.js';

const newAuctionId = () => 'auc_' + randomId(12);

const auctionUpdate = (auctionId: string, price: number, bidCount: number) => ({
  auctionId, price, nextMinimum: price + 100, leader: 'bidder-3fa9c2d1', endsAt: 1_795_000_000_000, bidCount, status: 'open', reserveMet: true,
});

/** A hub of its own on a uWS app of its own (no api), listening on a free port; stopped when the test ends. */
async function standaloneHub(t: Test, sys: System, options: Pick<LiveHubOptions, 'auctionSnapshot' | 'limits'>): Promise<{ hub: LiveHub; url: string }> {
  const app = uWS.App();
  const hub = new LiveHub({ app, redis: sys.redis, redisTarget: sys.cfg, log: createLogger('silent', 'live-test'), tickMs: 1000, ...options });
  await hub.start();
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('no port')))));
  t.teardown(async () => {
    await hub.stop();
    uWS.us_listen_socket_close(listenSocket);
  });
  return { hub, url: `http://127.0.0.1:${uWS.us_socket_local_port(listenSocket as never)}` };
}

t.test('fan-out: an update published on the live channel reaches the subscribers on every api node, and only them', async (t) => {
  const sys = await boot(t);
  const nodeB = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-b'));
  await holdToDocument(t, nodeB.url);
  t.teardown(() => nodeB.stop());
  const auction = newAuctionId();
  const other = newAuctionId();

  const onA = await LiveClient.connect(sys.url);
  const onB = await LiveClient.connect(nodeB.url);
  const bystander = await LiveClient.connect(nodeB.url);
  t.teardown(() => [onA, onB, bystander].forEach((c) => c.close()));

  t.same(await onA.subscribe(`auction/${auction}`), { op: 'subscribed', topic: `auction/${auction}`, snapshot: null }, 'no snapshot source: snapshot null');
  t.same(await onB.subscribe(`auction/${auction}`), { op: 'subscribed', topic: `auction/${auction}`, snapshot: null });
  t.equal((await bystander.subscribe(`auction/${other}`)).op, 'subscribed');
  t.equal(sys.api!.live.connections, 1, 'node A counts its connection');
  t.equal(nodeB.live.connections, 2, 'node B counts its two');
  t.equal(nodeB.live.subscriptions, 2);

  // What an auction script will do after an accepted bid.
  const update = auctionUpdate(auction, 1200, 17);
  await sys.redis.publish(LIVE_CHANNEL, `auction/${auction} ${JSON.stringify(update)}`);
  const match = (f: Record<string, unknown>) => f.topic === `auction/${auction}` && f.op === undefined;
  t.same(await onA.next(match, 'the update on node A'), { topic: `auction/${auction}`, data: update }, 'node A forwards it');
  t.same(await onB.next(match, 'the update on node B'), { topic: `auction/${auction}`, data: update }, 'node B forwards it');

  // Junk on the channel is dropped; it crashes nothing and does not block what follows.
  for (const junk of ['garbage', `auction/${auction}`, `auction/${auction} not-json`, `auction/nope {"price":1}`, ` {"price":1}`]) {
    await sys.redis.publish(LIVE_CHANNEL, junk);
  }
  const otherUpdate = auctionUpdate(other, 500, 1);
  await sys.redis.publish(LIVE_CHANNEL, `auction/${other} ${JSON.stringify(otherUpdate)}`);
  t.same(await bystander.next((f) => f.topic === `auction/${other}`, "the bystander's own update"), { topic: `auction/${other}`, data: otherUpdate });
  await Promise.all([onA.barrier(), onB.barrier(), bystander.barrier()]);
  t.same(bystander.unread(), [], 'the bystander never got the update of an auction it did not subscribe to');
  t.same(onA.unread(), [], 'junk reached nobody');
  t.same(onB.unread(), []);

  const second = auctionUpdate(auction, 1300, 18);
  await sys.redis.publish(LIVE_CHANNEL, `auction/${auction} ${JSON.stringify(second)}`);
  t.same((await onA.next(match)).data, second, 'updates keep flowing, in order');
  t.same((await onB.next(match)).data, second);
});

t.test('sale ticks: a snapshot, then a tick when purchases change the stock, and none while nothing changes', async (t) => {
  const sys = await boot(t, { env: { STAMPEDE_LIVE_TICK_MS: '20' } });
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const quiet = await sys.createSale({ stock: 5, perBuyerLimit: 1 });
  const buyers = await sys.createBuyers(3);
  const client = await LiveClient.connect(sys.url);
  t.teardown(() => client.close());

  const subscribed = await client.subscribe(`sale/${sale.id}`);
  t.same(subscribed, { op: 'subscribed', topic: `sale/${sale.id}`, snapshot: { available: 10, reserved: 0, sold: 0, stock: 10, status: 'open' } }, 'the live stock as snapshot');
  t.same((await client.subscribe(`sale/${quiet.id}`)).snapshot, { available: 5, reserved: 0, sold: 0, stock: 5, status: 'open' });

  for (const b of buyers.slice(0, 2)) t.equal((await sys.purchase(b, sale.id)).status, 202, 'purchase accepted through the HTTP API');
  const tick = await client.next((f) => f.topic === `sale/${sale.id}` && f.data.available === 8, 'a tick with 8 available');
  t.same(tick, { topic: `sale/${sale.id}`, data: { available: 8, reserved: 2, sold: 0, stock: 10, status: 'open' } });

  // Several more polls, with nothing changed: no frame.
  const live = sys.api!.live;
  const after = live.ticks;
  await waitFor('three more polls', async () => live.ticks >= after + 3);
  await client.barrier();
  const ticks = client.unread().filter((f) => f.topic !== undefined && f.op === undefined);
  t.ok(ticks.every((f) => f.topic === `sale/${sale.id}` && f.data.available === 9), 'at most the in-between state (9) was also ticked', { ticks });
  t.notOk(ticks.some((f) => f.topic === `sale/${quiet.id}`), 'the untouched sale never ticked', { ticks });
  const drained = client.unread().length;
  const later = live.ticks;
  await waitFor('three more polls', async () => live.ticks >= later + 3);
  await client.barrier();
  t.equal(client.unread().length, drained, 'no tick while nothing changes');

  t.equal((await sys.purchase(buyers[2]!, sale.id)).status, 202);
  t.same((await client.next((f) => f.topic === `sale/${sale.id}` && f.data.available === 7, 'a tick with 7 available')).data.reserved, 3);
});

t.test('unsubscribe stops the updates of that topic and nothing else', async (t) => {
  const sys = await boot(t, { env: { STAMPEDE_LIVE_TICK_MS: '20' } });
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const [buyer] = await sys.createBuyers(1);
  const auction = newAuctionId();
  const kept = newAuctionId();
  const client = await LiveClient.connect(sys.url);
  t.teardown(() => client.close());
  await client.subscribe(`auction/${auction}`);
  await client.subscribe(`auction/${kept}`);
  await client.subscribe(`sale/${sale.id}`);
  t.equal(sys.api!.live.subscriptions, 3);

  await sys.redis.publish(LIVE_CHANNEL, `auction/${auction} ${JSON.stringify(auctionUpdate(auction, 100, 1))}`);
  await client.next((f) => f.topic === `auction/${auction}`, 'the update before unsubscribing');

  t.same(await client.unsubscribe(`auction/${auction}`), { op: 'unsubscribed', topic: `auction/${auction}` });
  t.same(await client.unsubscribe(`sale/${sale.id}`), { op: 'unsubscribed', topic: `sale/${sale.id}` });
  t.same(await client.unsubscribe(`auction/${auction}`), { op: 'unsubscribed', topic: `auction/${auction}` }, 'unsubscribing twice is harmless');
  t.equal(sys.api!.live.subscriptions, 1);

  await sys.redis.publish(LIVE_CHANNEL, `auction/${auction} ${JSON.stringify(auctionUpdate(auction, 200, 2))}`);
  t.equal((await sys.purchase(buyer!, sale.id)).status, 202);
  const live = sys.api!.live;
  const now = live.ticks;
  await waitFor('three more polls', async () => live.ticks >= now + 3);
  await sys.redis.publish(LIVE_CHANNEL, `auction/${kept} ${JSON.stringify(auctionUpdate(kept, 300, 1))}`);
  await client.next((f) => f.topic === `auction/${kept}`, 'the update of the topic still held');
  await client.barrier();
  t.same(client.unread(), [], 'nothing of the topics given up');
});

t.test('bad input: a precise error frame each, and the connection and the process live on', async (t) => {
  const sys = await boot(t);
  const client = await LiveClient.connect(sys.url);
  t.teardown(() => client.close());
  const error = (what: string) => client.next((f) => f.op === 'error', what);

  const cases: [string, string | Buffer, string][] = [
    ['not JSON', 'subscribe me', 'MALFORMED_JSON'],
    ['a binary frame', Buffer.from(JSON.stringify({ op: 'subscribe', topic: `auction/${newAuctionId()}` })), 'VALIDATION_FAILED'],
    ['an array', '[]', 'VALIDATION_FAILED'],
    ['null', 'null', 'VALIDATION_FAILED'],
    ['a number', '42', 'VALIDATION_FAILED'],
    ['an unknown op', JSON.stringify({ op: 'dance', topic: `auction/${newAuctionId()}` }), 'VALIDATION_FAILED'],
    ['no op', JSON.stringify({ topic: `auction/${newAuctionId()}` }), 'VALIDATION_FAILED'],
    ['no topic', JSON.stringify({ op: 'subscribe' }), 'VALIDATION_FAILED'],
    ['a numeric topic', JSON.stringify({ op: 'subscribe', topic: 42 }), 'VALIDATION_FAILED'],
    ['an empty topic', JSON.stringify({ op: 'subscribe', topic: '' }), 'VALIDATION_FAILED'],
    ['a short auction id', JSON.stringify({ op: 'subscribe', topic: 'auction/auc_abc' }), 'VALIDATION_FAILED'],
    ['an upper-case auction id', JSON.stringify({ op: 'subscribe', topic: 'auction/auc_ABCDEFGHIJKL' }), 'VALIDATION_FAILED'],
    ['a sale id as auction', JSON.stringify({ op: 'subscribe', topic: 'auction/sal_abcdefghijkl' }), 'VALIDATION_FAILED'],
    ['a trailing newline', JSON.stringify({ op: 'subscribe', topic: 'sale/sal_abcdefghijkl\n' }), 'VALIDATION_FAILED'],
    ['an extra segment', JSON.stringify({ op: 'subscribe', topic: 'auction/auc_abcdefghijkl/x' }), 'VALIDATION_FAILED'],
    ['an unknown kind', JSON.stringify({ op: 'subscribe', topic: 'seller/usr_abcdefghijkl' }), 'VALIDATION_FAILED'],
    ['a wildcard', JSON.stringify({ op: 'subscribe', topic: 'auction/*' }), 'VALIDATION_FAILED'],
    ['an oversize frame', JSON.stringify({ op: 'subscribe', topic: `auction/${newAuctionId()}`, pad: 'x'.repeat(5000) }), 'PAYLOAD_TOO_LARGE'],
  ];
  for (const [what, frame, code] of cases) {
    client.send(frame);
    const e = await error(what);
    t.equal(e.code, code, `${what}: ${code}`);
    t.type(e.detail, 'string', `${what}: says why`);
  }
  const unknownSale = await client.subscribe('sale/sal_zzzzzzzzzzzz');
  t.match(unknownSale, { op: 'error', code: 'NOT_FOUND', topic: 'sale/sal_zzzzzzzzzzzz' }, 'an unknown sale: NOT_FOUND');
  t.equal(sys.api!.live.subscriptions, 0, 'no refused frame left a subscription behind');
  await client.barrier();
  t.same(client.unread(), [], 'one answer per frame');

  // Refusals and answers come back in the order the frames were sent.
  const auction = `auction/${newAuctionId()}`;
  client.send({ op: 'subscribe', topic: auction });
  client.send('{oops');
  client.send({ op: 'unsubscribe', topic: auction });
  t.same(await client.next(), { op: 'subscribed', topic: auction, snapshot: null });
  t.equal((await client.next()).code, 'MALFORMED_JSON');
  t.same(await client.next(), { op: 'unsubscribed', topic: auction });

  // The subscription limit: 100 topics at once is fine, the 101st is refused.
  const topics = Array.from({ length: 100 }, () => `auction/${newAuctionId()}`);
  const answers = await Promise.all(topics.map((topic) => client.subscribe(topic)));
  t.ok(answers.every((a) => a.op === 'subscribed'), '100 topics accepted');
  const extra = `auction/${newAuctionId()}`;
  t.match(await client.subscribe(extra), { op: 'error', code: 'TOO_MANY_SUBSCRIPTIONS', topic: extra });
  t.equal((await client.subscribe(topics[0]!)).op, 'subscribed', 'subscribing again to a held topic is not one more');
  await client.unsubscribe(topics[0]!);
  t.equal((await client.subscribe(extra)).op, 'subscribed', 'room again after an unsubscribe');
  t.equal(sys.api!.live.subscriptions, 100);

  // Past the hard cap uWS drops the connection without reading the frame; the process lives on.
  const brute = await LiveClient.connect(sys.url);
  brute.send('x'.repeat(100 * 1024));
  t.ok((await brute.closedWith()).code >= 1000, 'the connection is dropped');
  await waitFor('node counts the drop', async () => sys.api!.live.connections === 1);
  t.equal((await fetch(`${sys.url}/healthz`)).status, 200, 'the api still answers');
  const fresh = await LiveClient.connect(sys.url);
  t.match(await fresh.subscribe(`auction/${newAuctionId()}`), { op: 'subscribed' }, 'and takes new connections');
  fresh.close();
  await client.barrier();
  t.notOk(client.closed, 'the first connection survived everything');

  const plain = await fetch(`${sys.url}/v1/live`);
  t.ok(plain.status < 500, `a plain GET of /v1/live is refused without a 5xx (${plain.status})`);
  await plain.text();
});

t.test('stop() closes every WebSocket with 1001 and refuses nothing before', async (t) => {
  const sys = await boot(t);
  const node = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-stop'));
  await holdToDocument(t, node.url);
  let stopped = false;
  t.teardown(() => (stopped ? undefined : node.stop()));
  const clients = await Promise.all([LiveClient.connect(node.url), LiveClient.connect(node.url)]);
  await clients[0]!.subscribe(`auction/${newAuctionId()}`);
  t.equal(node.live.connections, 2);
  await node.stop();
  stopped = true;
  for (const c of clients) t.same(await c.closedWith(), { code: 1001, reason: 'server shutting down' }, 'closed as "going away"');
  t.equal(node.live.connections, 0);
  t.equal(node.live.subscriptions, 0);
});

t.test('a standalone hub: injected auction snapshots, a failing source, and a slow reader is cut off', async (t) => {
  const sys = await boot(t, { api: false });
  const known = newAuctionId();
  const broken = newAuctionId();
  const { hub, url } = await standaloneHub(t, sys, {
    limits: { maxBackpressure: 16 * 1024 },
    auctionSnapshot: async (id) => {
      if (id === broken) throw new Error('the auction store is down');
      return id === known ? auctionUpdate(known, 1200, 17) : undefined;
    },
  });

  const client = await LiveClient.connect(url);
  t.same(await client.subscribe(`auction/${known}`), { op: 'subscribed', topic: `auction/${known}`, snapshot: auctionUpdate(known, 1200, 17) }, 'the injected snapshot');
  const unknown = newAuctionId();
  t.same(await client.subscribe(`auction/${unknown}`), { op: 'subscribed', topic: `auction/${unknown}`, snapshot: null }, 'undefined: snapshot null');
  t.match(await client.subscribe(`auction/${broken}`), { op: 'error', code: 'UNAVAILABLE', topic: `auction/${broken}` }, 'a failing source: UNAVAILABLE');
  t.equal(hub.subscriptions, 2, 'and no subscription kept');

  // A reader that stops reading: once 16 KiB (plus what the kernel buffers) wait for it, it is disconnected.
  // The flood goes to a topic only the slow reader holds: a reader in this busy process could fall behind too.
  await client.unsubscribe(`auction/${known}`);
  const slow = await LiveClient.connect(url);
  await slow.subscribe(`auction/${known}`);
  const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  socket.pause();
  const big = `auction/${known} ${JSON.stringify({ ...auctionUpdate(known, 1, 1), pad: 'x'.repeat(4000) })}`;
  let published = 0;
  await waitFor('the slow reader to be cut off', async () => {
    if (hub.connections < 2) return true;
    const batch = sys.redis.pipeline();
    for (let i = 0; i < 500; i++) batch.publish(LIVE_CHANNEL, big);
    await batch.exec();
    published += 500;
    if (published > 50_000) throw new Error('never cut off');
    return false;
  }, 60_000, 0);
  socket.resume();
  t.ok((await slow.closedWith()).code >= 1000, 'the slow reader is disconnected');
  t.equal(hub.connections, 1, 'the other connection is not');
  const after = auctionUpdate(unknown, 700, 3);
  await sys.redis.publish(LIVE_CHANNEL, `auction/${unknown} ${JSON.stringify(after)}`);
  t.same((await client.next((f) => f.topic === `auction/${unknown}`)).data, after, 'and still gets its updates');
  client.close();
});

t.test('a lost subscriber connection: once back, every watched auction gets its current state, an auction updated meanwhile is not rewound', async (t) => {
  const sys = await boot(t, { api: false });
  const missed = newAuctionId();
  const fresh = newAuctionId();
  const unwatched = newAuctionId();
  // The auction store, as the hub reads it: `missed` takes a bid whose update is published while the hub is deaf.
  const state = new Map([[missed, auctionUpdate(missed, 1200, 17)], [fresh, auctionUpdate(fresh, 500, 1)], [unwatched, auctionUpdate(unwatched, 900, 2)]]);
  let reads = 0;
  let releaseFresh: () => void = () => {};
  const freshHeld = new Promise<void>((r) => (releaseFresh = r));
  const { hub, url } = await standaloneHub(t, sys, {
    auctionSnapshot: async (id) => {
      reads++;
      // After the reconnect, `fresh` is read slowly: a bid's update arrives (and is forwarded) before the read returns.
      if (id === fresh && reads > 2) await freshHeld;
      return id === fresh && reads > 2 ? auctionUpdate(fresh, 500, 1) : state.get(id);
    },
  });
  const client = await LiveClient.connect(url);
  t.teardown(() => client.close());
  t.same((await client.subscribe(`auction/${missed}`)).snapshot, auctionUpdate(missed, 1200, 17));
  t.same((await client.subscribe(`auction/${fresh}`)).snapshot, auctionUpdate(fresh, 500, 1));
  t.equal(reads, 2);

  // The bid on `missed` lands while the subscriber connection is gone: its update reaches no one.
  state.set(missed, auctionUpdate(missed, 1300, 18));
  (hub as unknown as { subscriber: { disconnect(reconnect: boolean): void } }).subscriber.disconnect(true);
  const catchUp = await client.next((f) => f.topic === `auction/${missed}`, 'the state of the auction updated while the hub was deaf');
  t.same(catchUp, { topic: `auction/${missed}`, data: auctionUpdate(missed, 1300, 18) }, 'pushed once the subscriber is back');

  // `fresh` gets a live update while its resync read is still out: the update wins, the older read is dropped.
  const newer = auctionUpdate(fresh, 700, 2);
  await sys.redis.publish(LIVE_CHANNEL, `auction/${fresh} ${JSON.stringify(newer)}`);
  t.same(await client.next((f) => f.topic === `auction/${fresh}`, 'the live update'), { topic: `auction/${fresh}`, data: newer });
  releaseFresh();
  await waitFor('the resync to finish', async () => reads === 4 && hub.resynced === 1, 10_000, 10);
  await client.barrier();
  t.same(client.unread().filter((f) => f.topic === `auction/${fresh}`), [], 'the stale state read before the update is not pushed after it');
  t.equal(hub.resynced, 1, 'one auction pushed; the unwatched one is not read at all');
});
