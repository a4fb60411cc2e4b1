/**
 * The notifications worker on the real services: the auction settlement's
 * announcements (outbid, won, lost, offer_failed, released) become inbox
 * rows in Postgres for the buyer each names and nobody else, exactly once
 * per (event, recipient) whatever the redelivery; poison is dead-lettered
 * with its reason, and the good announcements beside it are still told.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, sleep, waitFor, type System } from '../helpers/system.js';
import { openAmqp, type Amqp } from '../helpers/fault-kit.js';
import { bid, closeWhenDue, createAuction, waitSettled } from '../helpers/auctions.js';
import { announcement, inboxRows, publishAnnouncements, waitInbox } from '../helpers/notifications.js';
import { deadLetterQueue, retryQueue } from '../../src/platform/messaging/topology.js';
import { newBidId, randomId } from '../../src/platform/ids.js';
import { FanOut } from '../../src/notifications/fan-out.js';
import { retentionOf } from '../../src/notifications/inbox.js';
import { closeAuction } from '../../src/auctions/scripts.js';

const notificationQueues = (sys: System) => {
  const c = sys.cfg.topology.notifications;
  return [c.queue, ...sys.cfg.topology.retryDelaysMs.map((d) => retryQueue(c, d))];
};

async function quiet(sys: System, amqp: Amqp): Promise<void> {
  await amqp.quiet(500, 30_000, notificationQueues(sys));
}

t.test('each announcement is one inbox row for the buyer it names; published again and again, still one', async (t) => {
  const sys = await boot(t, { api: false, worker: true, env: { STAMPEDE_WORKER_QUEUES: 'notifications' } });
  const amqp = await openAmqp(t, sys.cfg);
  const { exchange } = sys.cfg.topology;
  const a = await createAuction(sys.pool, sys.redis);
  const [x, y, z] = await sys.createBuyers(3);
  const xBid = newBidId(a.id);
  const events = [
    announcement('outbid', `${xBid}:outbid`, { auctionId: a.id, buyerId: x, price: 1200, byBid: newBidId(a.id) }),
    announcement('won', `${a.id}:won`, { auctionId: a.id, buyerId: y, bidId: newBidId(a.id), currency: 'EUR', price: 2100, paid: 2000, bonus: 100 }),
    announcement('lost', `${a.id}:lost:${x}`, { auctionId: a.id, buyerId: x, outcome: 'sold', currency: 'EUR', price: 2100 }),
  ];
  await publishAnnouncements(amqp, exchange, events);
  await waitInbox(sys.pool, [x!, y!, z!], 3);
  // The same announcements again: one by one, twice, and as one batch.
  await publishAnnouncements(amqp, exchange, events);
  await publishAnnouncements(amqp, exchange, events);
  await publishAnnouncements(amqp, exchange, events, true);
  await quiet(sys, amqp);

  const rows = await inboxRows(sys.pool, [x!, y!, z!]);
  t.same(rows.map((r) => [r.recipient_id, r.event_id, r.type]).sort(), [
    [x, `${xBid}:outbid`, 'auction.outbid'],
    [x, `${a.id}:lost:${x}`, 'auction.lost'],
    [y, `${a.id}:won`, 'auction.won'],
  ].sort(), 'one row per (event, recipient), each with the buyer the event names; z has none');
  const won = rows.find((r) => r.type === 'auction.won')!;
  t.match(won, { title: 'You won Test lot', body: 'You paid EUR 20.00 (the house paid EUR 1.00 of the EUR 21.00 price).' });
  t.same(won.data, events[1]!.data, 'the data is the announcement\'s');
  t.match(rows.find((r) => r.type === 'auction.outbid'), { title: 'You were outbid on Test lot', body: /^The price is now EUR 12\.00\./ });
  t.match(rows.find((r) => r.type === 'auction.lost'), { title: 'Test lot went to another bidder', body: 'It sold for EUR 21.00.' });
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.notifications)), 0, 'nothing dead-lettered');
});

t.test('two workers receiving the same announcements at once write one row each', async (t) => {
  const sys = await boot(t, { api: false, env: { STAMPEDE_WORKER_QUEUES: 'notifications', STAMPEDE_WORKER_CONCURRENCY: '4' } });
  const amqp = await openAmqp(t, sys.cfg);
  await sys.startWorker();
  await sys.startWorker();
  const a = await createAuction(sys.pool, sys.redis);
  const buyers = await sys.createBuyers(50);
  const events = buyers.map((b) => announcement('lost', `${a.id}:lost:${b}`, { auctionId: a.id, buyerId: b, outcome: 'unsold', currency: 'EUR', price: null }));
  // Five copies of every announcement, interleaved, so copies land on both workers and in concurrent batches.
  for (let i = 0; i < 5; i++) await publishAnnouncements(amqp, sys.cfg.topology.exchange, events);
  await waitInbox(sys.pool, buyers, 50);
  await quiet(sys, amqp);
  const rows = await inboxRows(sys.pool, buyers);
  t.equal(rows.length, 50, '50 rows for 250 deliveries');
  t.same(rows.map((r) => r.recipient_id).sort(), [...buyers].sort(), 'each buyer exactly once');
  t.ok(rows.every((r) => r.event_id === `${a.id}:lost:${r.recipient_id}`), 'each row is its own buyer\'s event');
  t.match(rows[0], { title: 'Test lot closed unsold', body: 'Nobody bought the lot; your bid was not charged.' });
});

t.test('a real auction, relayed and settled: its bidders are told, each their own result', async (t) => {
  const sys = await boot(t, { api: false, relay: true, worker: true });
  const [x, y, z, bystander] = await sys.createBuyers(4, { currency: 'EUR', amount: 100_000 });
  // Ends soon, but not before the three bids are in on a slow machine.
  const a = await createAuction(sys.pool, sys.redis, { endsAt: Date.now() + 1500, softCloseMs: 0, reservePrice: 1500 });
  await bid(sys.redis, a, z!, 1000);
  const xb = await bid(sys.redis, a, x!, 1100, 3000);
  await bid(sys.redis, a, y!, 1200, 2000);
  await closeWhenDue(sys.redis, a.id);
  await waitSettled(sys.pool, a.id);
  const rows = await waitInbox(sys.pool, [x!, y!, z!, bystander!], 4);
  await sleep(300);
  t.same((await inboxRows(sys.pool, [x!, y!, z!, bystander!])).map((r) => [r.recipient_id, r.event_id, r.type]).sort(), [
    [x, `${a.id}:won`, 'auction.won'],
    [y, `${a.id}:lost:${y}`, 'auction.lost'],
    [z, `${a.id}:lost:${z}`, 'auction.lost'],
    [z, `${xb}:outbid`, 'auction.outbid'],
  ].sort(), 'the winner, the two others, and the leader x overtook; the bystander nothing');
  t.match(rows.find((r) => r.type === 'auction.won'), { title: 'You won Test lot', body: 'You paid EUR 21.00.' });
});

t.test('a cancelled auction releases its bidders in their inboxes', async (t) => {
  const sys = await boot(t, { api: false, relay: true, worker: true });
  const a = await createAuction(sys.pool, sys.redis);
  const [x, y] = await sys.createBuyers(2);
  await bid(sys.redis, a, x!, 1000);
  await bid(sys.redis, a, y!, 1100);
  await closeAuction(sys.redis, a.id, 'cancel');
  const rows = await waitInbox(sys.pool, [x!, y!], 3);
  const released = rows.filter((r) => r.type === 'auction.released');
  t.same(released.map((r) => r.recipient_id).sort(), [x, y].sort(), 'both bidders released');
  t.match(released[0], { title: 'Test lot was cancelled', body: 'Your bids on it are released; nothing was charged.' });
});

t.test('poison is dead-lettered at once with its reason; the good announcements beside it are told', async (t: Test) => {
  const sys = await boot(t, { api: false, worker: true, env: { STAMPEDE_WORKER_QUEUES: 'notifications' } });
  const amqp = await openAmqp(t, sys.cfg);
  const { notifications } = sys.cfg.topology;
  const a = await createAuction(sys.pool, sys.redis);
  const [x, y] = await sys.createBuyers(2);
  const good = announcement('released', `${a.id}:released:${x}`, { auctionId: a.id, buyerId: x, cancelledAt: Date.now() });
  const cases: [string, unknown, RegExp][] = [
    ['not JSON', '{', /message is not JSON/],
    ['a purchase event', { ...good, id: 'p1', type: 'stampede.purchase.accepted.v1' }, /stampede\.purchase\.accepted\.v1 is not told to anyone/],
    ['an unknown type', { ...good, id: 'p2', type: 'stampede.auction.teleported.v1' }, /unknown event type stampede\.auction\.teleported\.v1/],
    ['a negative price', announcement('outbid', 'p3', { auctionId: a.id, buyerId: y, price: -5, byBid: newBidId(a.id) }), /auction\.outbid\.v1: data\/price must be >= 1/],
    ['a buyer that is no user id', announcement('released', 'p4', { auctionId: a.id, buyerId: 'admin', cancelledAt: 1 }), /data\/buyerId must match pattern/],
    ['an extra field', announcement('released', 'p5', { auctionId: a.id, buyerId: y, cancelledAt: 1, admin: true }), /data\/admin is not allowed/],
    ['no id', { ...good, id: undefined }, /id must be a string/],
    ['an unknown auction', announcement('released', 'p6', { auctionId: 'auc_zzzzzzzzzzzz', buyerId: y, cancelledAt: 1 }), /names an unknown auction auc_zzzzzzzzzzzz/],
  ];
  for (const [what, body] of cases) {
    await amqp.sendToQueue(notifications.queue, typeof body === 'string' ? body : JSON.stringify(body), { messageId: `poison:${what}` });
  }
  // Poison inside a batch: the good event of the batch is told.
  await amqp.sendToQueue(notifications.queue, JSON.stringify([good, { ...good, id: 'p7', data: { ...(good.data as object), cancelledAt: 'soon' } }]), { messageId: 'poison:batch' });
  await quiet(sys, amqp);

  const dead = await amqp.take(deadLetterQueue(notifications), cases.length + 1);
  const reasons = new Map(dead.map((m) => [m.properties.messageId as string, String(m.properties.headers?.['x-stampede-last-error'])]));
  for (const [what, , reason] of cases) t.match(reasons.get(`poison:${what}`), reason, `${what}: dead-lettered with its reason`);
  t.match([...reasons.entries()].find(([id]) => id === 'p7')?.[1], /data\/cancelledAt must be integer/, 'the batch\'s bad event alone');
  for (const m of dead) amqp.ch.ack(m);
  t.ok(dead.every((m) => !m.properties.headers?.['x-stampede-attempt']), 'none went through a retry tier');
  t.same((await inboxRows(sys.pool, [x!, y!])).map((r) => [r.recipient_id, r.event_id]), [[x, good.id]], 'only the good announcement was told; y got nothing');
});

t.test('a worker starting asks again for a step of every unfinished fan-out, so one whose next step was lost still finishes, each buyer told once', async (t) => {
  const sys = await boot(t, { api: false, worker: false, env: { STAMPEDE_WORKER_QUEUES: 'notifications' } });
  const buyers = await sys.createBuyers(5);
  const eventId = `test:${randomId(8)}`;
  // A step told the first chunk, then its worker died before asking for the next: no step message is left anywhere.
  const fanOut = new FanOut(sys.pool, { chunkSize: 2, retention: retentionOf(sys.cfg) });
  await fanOut.record({ eventId, type: 'announcement', title: 'Resumed', body: 'Told to the end.', data: {} }, { buyerIds: buyers });
  t.match(await fanOut.step(eventId, async () => {}), { told: { recipients: 2 }, finished: false });
  t.ok((await fanOut.unfinished()).includes(eventId), 'stuck until a worker starts');

  await sys.startWorker();
  await waitFor('the fan-out to finish', async () => (await fanOut.progress(eventId))!.finished);
  t.match(await fanOut.progress(eventId), { recipients: 5, inApp: 5, finished: true });
  const { rows } = await sys.pool.query<{ recipient_id: string; n: number }>('SELECT recipient_id, count(*)::int AS n FROM notifications WHERE event_id = $1 GROUP BY 1 ORDER BY 1', [eventId]);
  t.same(rows, [...buyers].sort().map((b) => ({ recipient_id: b, n: 1 })), 'every buyer once');
  t.notOk((await fanOut.unfinished()).includes(eventId), 'not unfinished any more');
});
