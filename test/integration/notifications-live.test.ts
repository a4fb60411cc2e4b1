/**
 * The live push to buyers on the real services: announcements told by the
 * real notifications worker reach the buyer on whichever of two api nodes
 * they are connected to, over `ws /v1/live` (their `user/<id>` topic, after
 * an `auth` frame) and over `GET /v1/notifications/stream` (SSE); nobody
 * else's ever do, and the user topic is refused without a valid token and
 * for another buyer.
 *
 * The notifications channel is shared by every Redis database: other test
 * sessions publish on it too, so only this file's own buyers are watched.
 */
import t, { type Test } from 'tap';
import { boot, holdToDocument, call, waitFor, type System } from '../helpers/system.js';
import { openAmqp, type Amqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, publishAnnouncements } from '../helpers/notifications.js';
import { LiveClient } from '../helpers/live-client.js';
import { badCredentials } from '../helpers/problem.js';
import { SseClient } from '../helpers/sse-client.js';
import { createLogger } from '../../src/platform/log.js';
import { startApi } from '../../src/roles/index.js';
import { insertNotifications } from '../../src/notifications/repository.js';
import { FanOut } from '../../src/notifications/fan-out.js';
import { retentionOf } from '../../src/notifications/inbox.js';
import { LivePush } from '../../src/notifications/push.js';
import { randomId } from '../../src/platform/ids.js';

const NOTIFICATIONS_ONLY = { STAMPEDE_WORKER_QUEUES: 'notifications' };

/** Publishes that `buyerId` lost a new lot, without waiting for it to be told; resolves with its event id. */
async function announceLost(sys: System, amqp: Amqp, buyerId: string): Promise<string> {
  const lot = await createAuction(sys.pool, sys.redis);
  const e = announcement('lost', `${lot.id}:lost:${buyerId}`, { auctionId: lot.id, buyerId, outcome: 'sold', currency: 'EUR', price: 1500 });
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [e]);
  return e.id;
}

/** The buyer's inbox items, oldest first. */
async function inboxOf(sys: System, buyerId: string): Promise<Record<string, any>[]> {
  const inbox = await call(`${sys.url}/v1/notifications?limit=100`, { headers: { authorization: `Bearer ${sys.token(buyerId)}` } });
  return inbox.body.items.reverse();
}

/** Tells `buyerId` they lost a new lot; resolves with the inbox item once the row is written. */
async function tellLost(sys: System, amqp: Amqp, buyerId: string): Promise<Record<string, any>> {
  const eventId = await announceLost(sys, amqp, buyerId);
  await waitFor(`${eventId} told`, async () => (await sys.pool.query('SELECT 1 FROM notifications WHERE event_id = $1', [eventId])).rowCount === 1);
  return (await inboxOf(sys, buyerId)).at(-1)!;
}

/** The real notifications worker and two api nodes: the one `boot` starts (node A, `sys.url`) and node B. */
async function twoNodes(t: Test) {
  const sys = await boot(t, { worker: true, env: NOTIFICATIONS_ONLY });
  const nodeB = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-b'));
  await holdToDocument(t, nodeB.url);
  t.teardown(() => nodeB.stop());
  return { sys, nodeB, amqp: await openAmqp(t, sys.cfg) };
}

const streamOf = (url: string, token: string, lastEventId?: string) =>
  SseClient.connect(`${url}/v1/notifications/stream`, { authorization: `Bearer ${token}`, ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) });

async function authenticated(client: LiveClient, token: string, what: string) {
  client.send({ op: 'auth', token });
  const answer = await client.next((f) => f.op === 'authenticated' || f.op === 'error', `answer to auth (${what})`);
  return answer;
}

t.test('ws: a notification reaches its buyer on whichever node they are connected to, and nobody else', async (t) => {
  const { sys, nodeB, amqp } = await twoNodes(t);
  const [x, y] = await sys.createBuyers(2);

  const xOnA = await LiveClient.connect(sys.url);
  const xOnB = await LiveClient.connect(nodeB.url);
  const yOnB = await LiveClient.connect(nodeB.url);
  t.teardown(() => [xOnA, xOnB, yOnB].forEach((c) => c.close()));
  for (const [client, buyer] of [[xOnA, x], [xOnB, x], [yOnB, y]] as const) {
    t.same(await authenticated(client, sys.token(buyer!), buyer!), { op: 'authenticated' });
    t.same(await client.subscribe(`user/${buyer}`), { op: 'subscribed', topic: `user/${buyer}`, snapshot: null }, `${buyer} holds their own topic`);
  }

  const forX = await tellLost(sys, amqp, x!);
  t.same(await xOnA.next((f) => f.topic === `user/${x}`, 'x on node A'), { topic: `user/${x}`, data: forX }, 'x on node A: the item the inbox shows');
  t.same(await xOnB.next((f) => f.topic === `user/${x}`, 'x on node B'), { topic: `user/${x}`, data: forX }, 'x on node B too');
  const forY = await tellLost(sys, amqp, y!);
  t.same(await yOnB.next((f) => f.topic === `user/${y}`, 'y on node B'), { topic: `user/${y}`, data: forY }, "y's reaches y");
  for (const client of [xOnA, xOnB, yOnB]) await client.barrier();
  t.same(xOnA.unread(), [], "nothing of y's reached x on node A");
  t.same(xOnB.unread(), [], "nothing of y's reached x on node B");
  t.same(yOnB.unread(), [], "nothing of x's reached y");
  t.equal(sys.api!.live.pushed, 1, 'node A pushed only the notification one of its connections waits for');
  t.equal(nodeB.live.pushed, 2, 'node B pushed both');

  t.same(await yOnB.unsubscribe(`user/${y}`), { op: 'unsubscribed', topic: `user/${y}` });
  await tellLost(sys, amqp, y!);
  await yOnB.barrier();
  t.same(yOnB.unread(), [], 'unsubscribed: nothing more');
});

t.test('ws: the user topic is refused without a token, with a bad one, for another buyer and to a deleted buyer', async (t) => {
  const sys = await boot(t, { worker: false });
  const [x, y, gone] = await sys.createBuyers(3);
  const client = await LiveClient.connect(sys.url);
  t.teardown(() => client.close());

  t.match(await client.subscribe(`user/${x}`), { op: 'error', code: 'UNAUTHORIZED', topic: `user/${x}` }, 'unauthenticated: refused');
  const { badTokens } = badCredentials(sys.cfg.STAMPEDE_JWT_SECRET, x!, y!, 'sal_000000000000');
  for (const [what, token] of badTokens) {
    t.match(await authenticated(client, token, what), { op: 'error', code: 'UNAUTHORIZED' }, `auth refused: ${what}`);
  }
  for (const [what, frame] of [
    ['no token', { op: 'auth' }], ['a number', { op: 'auth', token: 42 }], ['empty', { op: 'auth', token: '' }], ['over 2048 characters', { op: 'auth', token: 'a'.repeat(2049) }],
  ] as const) {
    client.send(frame);
    t.match(await client.next((f) => f.op === 'error', what), { op: 'error', code: 'VALIDATION_FAILED', detail: /token/ }, `auth frame with ${what}`);
  }
  t.match(await client.subscribe(`user/${x}`), { op: 'error', code: 'UNAUTHORIZED' }, 'still unauthenticated after refused tokens');
  client.send({ op: 'subscribe', topic: 'user/usr_x' });
  t.match(await client.next((f) => f.op === 'error', 'bad user topic'), { op: 'error', code: 'VALIDATION_FAILED', detail: /user\/usr_/ }, 'a user topic must name a user id');

  t.same(await authenticated(client, sys.token(x!), 'x'), { op: 'authenticated' });
  t.match(await client.subscribe(`user/${y}`), { op: 'error', code: 'FORBIDDEN', topic: `user/${y}` }, "another buyer's topic: forbidden");
  t.match(await authenticated(client, sys.token(y!), 'y on x\'s connection'), { op: 'error', code: 'FORBIDDEN' }, 'a connection stays one buyer\'s');
  t.same(await authenticated(client, sys.token(x!), 'x again'), { op: 'authenticated' }, 'a fresh token of the same buyer is accepted');
  t.same(await client.subscribe(`user/${x}`), { op: 'subscribed', topic: `user/${x}`, snapshot: null }, 'its own topic');
  t.equal(sys.api!.live.subscriptions, 1);

  t.equal((await sys.operator(`/v1/buyers/${gone}`, { method: 'DELETE' })).status, 200);
  const other = await LiveClient.connect(sys.url);
  t.teardown(() => other.close());
  const goneToken = sys.token(gone!);
  await waitFor('the deletion to reach the api', async () => (await authenticated(other, goneToken, 'deleted')).code === 'UNAUTHORIZED');
  t.match(await other.subscribe(`user/${gone}`), { op: 'error', code: 'UNAUTHORIZED' }, 'a deleted buyer is refused like on the HTTP API');
});

t.test('sse: a notification reaches its buyer on whichever node they stream from, and nobody else', async (t) => {
  const { sys, nodeB, amqp } = await twoNodes(t);
  const [x, y] = await sys.createBuyers(2);
  const xOnA = await streamOf(sys.url, sys.token(x!));
  const xOnB = await streamOf(nodeB.url, sys.token(x!));
  const yOnB = await streamOf(nodeB.url, sys.token(y!));
  t.teardown(() => [xOnA, xOnB, yOnB].forEach((c) => c.close()));
  t.equal(xOnA.status, 200);
  t.equal(xOnA.headers.get('content-type'), 'text/event-stream');
  t.equal(xOnA.headers.get('cache-control'), 'no-cache');
  await waitFor('the streams to be open on both nodes', async () => sys.api!.eventStreams.count === 1 && nodeB.eventStreams.count === 2);

  const forX = await tellLost(sys, amqp, x!);
  t.same(await xOnA.next(), { id: forX.id, item: forX }, 'x on node A: the inbox item, its id as the event id');
  t.same(await xOnB.next(), { id: forX.id, item: forX }, 'x on node B too');
  const forY = await tellLost(sys, amqp, y!);
  t.same(await yOnB.next(), { id: forY.id, item: forY }, "y's first is y's own: nothing of x's came before it");
  // Later notifications of each, as barriers: the feed delivers in the order published.
  const againX = await tellLost(sys, amqp, x!);
  const againY = await tellLost(sys, amqp, y!);
  t.same(await xOnA.next(), { id: againX.id, item: againX }, "nothing of y's reached x on node A");
  t.same(await xOnB.next(), { id: againX.id, item: againX }, "nothing of y's reached x on node B");
  t.same(await yOnB.next(), { id: againY.id, item: againY }, "nothing of x's reached y");
  t.same([xOnA.unread(), xOnB.unread(), yOnB.unread()], [[], [], []]);
});

t.test('sse: Last-Event-ID resumes with exactly the missed ones, in order, then the live ones, none twice', async (t) => {
  const { sys, nodeB, amqp } = await twoNodes(t);
  const [x] = await sys.createBuyers(1);
  const first = await streamOf(sys.url, sys.token(x!));
  await waitFor('the stream open', async () => sys.api!.eventStreams.count === 1);
  await tellLost(sys, amqp, x!);
  await tellLost(sys, amqp, x!);
  const seen = [(await first.next()).id!, (await first.next()).id!];
  first.close();
  await waitFor('the server to see the disconnect', async () => sys.api!.eventStreams.count === 0);

  const missed = [await tellLost(sys, amqp, x!), await tellLost(sys, amqp, x!), await tellLost(sys, amqp, x!)];
  const resumed = await streamOf(nodeB.url, sys.token(x!), seen[1]);
  t.teardown(() => resumed.close());
  for (const item of missed) t.same(await resumed.next(), { id: item.id, item }, `missed ${item.id} resent, in order`);
  const live = await tellLost(sys, amqp, x!);
  t.same(await resumed.next(), { id: live.id, item: live }, 'then the live ones');
  t.same(resumed.unread(), [], 'none twice');

  // Notifications told while a stream switches from the backlog to the live feed: each arrives once.
  const burst = Promise.all(Array.from({ length: 6 }, () => announceLost(sys, amqp, x!)));
  const racing = await streamOf(sys.url, sys.token(x!), seen[0]);
  t.teardown(() => racing.close());
  await burst;
  const after = (await waitFor('the burst told', async () => {
    const items = await inboxOf(sys, x!);
    return items.length === 2 + missed.length + 1 + 6 ? items : undefined;
  })).slice(1);
  const got: string[] = [];
  while (got.length < after.length) got.push((await racing.next(() => true, `event ${got.length + 1} of ${after.length}`)).id!);
  t.same([...got].sort(), after.map((n) => n.id).sort(), 'every notification after Last-Event-ID, once');
  t.same(got.slice(0, 1 + missed.length + 1), after.slice(0, 1 + missed.length + 1).map((n) => n.id), 'the backlog in order');
  const barrier = await tellLost(sys, amqp, x!);
  t.same(await racing.next(), { id: barrier.id, item: barrier });
  t.same(racing.unread(), [], 'and nothing more');
});

t.test('sse: keep-alive comments, the streams-per-node limit, and a clean close when the api stops', async (t) => {
  const sys = await boot(t, { worker: false });
  const node = await startApi({ ...sys.cfg, STAMPEDE_SSE_KEEPALIVE_MS: 100, STAMPEDE_SSE_MAX_STREAMS: 2 }, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-sse'));
  await holdToDocument(t, node.url);
  let stopped = false;
  t.teardown(() => (stopped ? undefined : node.stop()));
  const [x, y] = await sys.createBuyers(2);
  const one = await streamOf(node.url, sys.token(x!));
  const two = await streamOf(node.url, sys.token(y!));
  await one.waitUntil('three keep-alive comments', () => one.comments >= 4);
  t.pass('keep-alive comments arrive on an idle stream');
  const third = await streamOf(node.url, sys.token(x!));
  t.equal(third.status, 503, 'a third stream is refused');
  t.equal(third.headers.get('content-type'), 'application/problem+json');
  t.equal(third.headers.get('retry-after'), '1');
  t.match(third.refusal, { code: 'UNAVAILABLE', detail: /2/ });
  two.close();
  await waitFor('the closed stream to free its place', async () => node.eventStreams.count === 1);
  const again = await streamOf(node.url, sys.token(y!));
  t.equal(again.status, 200, 'a place freed is taken again');

  stopped = true;
  await node.stop();
  await one.waitUntil('the stream to end', () => one.ended);
  await again.waitUntil('the stream to end', () => again.ended);
  t.equal(node.eventStreams.count, 0, 'stopping the api ended every stream');
});

t.test("sse: after the node's feed connection was lost, a stream sends what it missed, once", async (t) => {
  const { sys, amqp } = await twoNodes(t);
  const [x] = await sys.createBuyers(1);
  const stream = await streamOf(sys.url, sys.token(x!));
  t.teardown(() => stream.close());
  await waitFor('the stream open', async () => sys.api!.eventStreams.count === 1);
  const first = await tellLost(sys, amqp, x!);
  t.same(await stream.next(), { id: first.id, item: first });

  // A row the node never hears of (published while it was deaf): written straight to the inbox.
  const lot = await createAuction(sys.pool, sys.redis);
  await insertNotifications(sys.pool, [{ eventId: `${lot.id}:lost:${x}`, recipientId: x!, type: 'auction.lost', title: 'Unheard', body: 'Written while the feed was down.', data: { auctionId: lot.id } }]);
  const unheard = (await inboxOf(sys, x!)).at(-1)!;
  (sys.api!.feed as unknown as { subscriber: { disconnect(reconnect: boolean): void } }).subscriber.disconnect(true);
  t.same(await stream.next(), { id: unheard.id, item: unheard }, 'read from Postgres once the feed is back');
  const live = await tellLost(sys, amqp, x!);
  t.same(await stream.next(), { id: live.id, item: live }, 'then live again');
  t.same(stream.unread(), [], 'none twice');
});

t.test('a fan-out chunk travels as one message, and each node hands each recipient connected to it their own row, nobody else anything', async (t) => {
  const { sys, nodeB, amqp } = await twoNodes(t);
  const [x, y, z] = await sys.createBuyers(3);
  const xOnA = await LiveClient.connect(sys.url);
  const zOnA = await LiveClient.connect(sys.url);
  t.teardown(() => [xOnA, zOnA].forEach((c) => c.close()));
  for (const [client, buyer] of [[xOnA, x], [zOnA, z]] as const) {
    t.same(await authenticated(client, sys.token(buyer!), buyer!), { op: 'authenticated' });
    await client.subscribe(`user/${buyer}`);
  }
  const yOnB = await streamOf(nodeB.url, sys.token(y!));
  const zOnB = await streamOf(nodeB.url, sys.token(z!));
  t.teardown(() => [yOnB, zOnB].forEach((c) => c.close()));
  await waitFor('the streams to be open on node B', async () => nodeB.eventStreams.count === 2);

  const heardBefore = [sys.api!.feed.heard, nodeB.feed.heard];
  const push = new LivePush(sys.redis, createLogger('warn', 'test'));
  const fanOut = new FanOut(sys.pool, { chunkSize: 100, retention: retentionOf(sys.cfg) }, push);
  const eventId = `test:${randomId(8)}`;
  await fanOut.tell({ eventId, type: 'announcement', title: 'For x and y', body: 'Only theirs.', data: {} }, { buyerIds: [x!, y!] }, async () => {});
  const forX = (await inboxOf(sys, x!)).at(-1)!;
  const forY = (await inboxOf(sys, y!)).at(-1)!;
  t.not(forX.id, forY.id, 'two rows, two ids');
  t.same(await xOnA.next((f) => f.topic === `user/${x}`, 'x on node A'), { topic: `user/${x}`, data: forX }, 'x (ws, node A): their own row');
  t.same(await yOnB.next(), { id: forY.id, item: forY }, 'y (sse, node B): their own row');
  t.same([sys.api!.feed.heard - heardBefore[0]!, nodeB.feed.heard - heardBefore[1]!], [2, 2], 'each node heard the two recipients');
  const forZ = await tellLost(sys, amqp, z!);
  t.same(await zOnA.next((f) => f.topic === `user/${z}`, 'z on node A'), { topic: `user/${z}`, data: forZ }, "z's first is z's own on ws: nothing of the fan-out's");
  t.same(await zOnB.next(), { id: forZ.id, item: forZ }, "z's first is z's own on sse: nothing of the fan-out's");
  await xOnA.barrier();
  t.same([xOnA.unread(), yOnB.unread()], [[], []], 'x and y got theirs once');
});
