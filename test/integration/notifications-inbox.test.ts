/**
 * The inbox API on the real services: announcements told by the real
 * worker, read back newest first a page at a time, `unread` counting what
 * arrived since the buyer last opened the inbox, marking one or all read;
 * a buyer never sees, counts or marks another buyer's notifications; and
 * retention keeps at most the cap per buyer and nothing past its age (the
 * scheduler's sweep deletes what is past it).
 */
import t from 'tap';
import { boot, call, sleep, waitFor, type System } from '../helpers/system.js';
import { openAmqp, type Amqp } from '../helpers/fault-kit.js';
import { createAuction, type TestAuction } from '../helpers/auctions.js';
import { announcement, publishAnnouncements } from '../helpers/notifications.js';
import { createLogger } from '../../src/platform/log.js';
import { retentionOf } from '../../src/notifications/inbox.js';
import { RetentionSweep } from '../../src/notifications/retention.js';

const NOTIFICATIONS_ONLY = { STAMPEDE_WORKER_QUEUES: 'notifications' };

function buyerApi(sys: System, buyerId: string) {
  const headers = { authorization: `Bearer ${sys.token(buyerId)}`, 'content-type': 'application/json' };
  return {
    list: (query = '') => call(`${sys.url}/v1/notifications${query}`, { headers }),
    post: (path: string, body?: unknown) => call(`${sys.url}/v1/notifications${path}`, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) }),
  };
}

/** Tells each buyer that they lost `n` lots (one announcement each, published in this order). */
async function tellLost(sys: System, amqp: Amqp, auctions: TestAuction[], buyerId: string) {
  const events = auctions.map((a) => announcement('lost', `${a.id}:lost:${buyerId}`, { auctionId: a.id, buyerId, outcome: 'sold', currency: 'EUR', price: 1500 }));
  for (const e of events) {
    await publishAnnouncements(amqp, sys.cfg.topology.exchange, [e]);
    // One at a time, so the inbox order is the publishing order.
    await waitFor(`${e.id} told`, async () => (await sys.pool.query('SELECT 1 FROM notifications WHERE event_id = $1', [e.id])).rowCount === 1);
  }
  return events;
}

t.test('newest first, a page at a time; unread since last opened; read one, read all; nobody else\'s', async (t) => {
  const sys = await boot(t, { worker: true, env: NOTIFICATIONS_ONLY });
  const amqp = await openAmqp(t, sys.cfg);
  const [x, y] = await sys.createBuyers(2);
  const lots = await Promise.all(Array.from({ length: 5 }, () => createAuction(sys.pool, sys.redis)));
  const told = await tellLost(sys, amqp, lots, x!);
  const [ownOfY] = await tellLost(sys, amqp, lots.slice(0, 1), y!);
  const api = buyerApi(sys, x!);

  const first = await api.list('?limit=2');
  t.equal(first.status, 200);
  t.equal(first.body.items.length, 2);
  t.match(first.body.items[0], {
    id: /^ntf_\d+$/, type: 'auction.lost', title: 'Test lot went to another bidder', body: 'It sold for EUR 15.00.',
    data: told[4]!.data, readAt: null, createdAt: /^\d{4}-\d\d-\d\dT/,
  }, 'the newest first, every field');
  t.same(Object.keys(first.body.items[0]).sort(), ['body', 'createdAt', 'data', 'id', 'readAt', 'title', 'type']);
  t.equal(first.body.unread, 5, 'never opened: all five unread');
  t.equal(first.body.next, first.body.items[1].id, 'next is the last id of the page');
  const second = await api.list(`?limit=2&before=${first.body.next}`);
  const third = await api.list(`?limit=2&before=${second.body.next}`);
  t.equal(third.body.next, null, 'the last page says so');
  const all = [...first.body.items, ...second.body.items, ...third.body.items];
  t.same(all.map((n: { data: { auctionId: string } }) => n.data.auctionId), [...lots].reverse().map((l) => l.id), 'every notification once, newest first');
  t.same((await api.list()).body.items.map((n: { id: string }) => n.id), all.map((n) => n.id), 'the default page holds them all');

  const opened = await api.post('/opened');
  t.equal(opened.status, 200);
  t.match(opened.body, { openedAt: /^\d{4}-/ });
  t.equal((await api.list()).body.unread, 0, 'opened: nothing unread');
  await sleep(5);
  const [later] = await tellLost(sys, amqp, [await createAuction(sys.pool, sys.redis)], x!);
  t.equal((await api.list()).body.unread, 1, 'one created since');

  const one = await api.post(`/${all[2].id}/read`);
  t.equal(one.status, 200);
  t.match(one.body, { id: all[2].id, readAt: /^\d{4}-/ });
  const again = await api.post(`/${all[2].id}/read`);
  t.equal(again.body.readAt, one.body.readAt, 'read again: the first reading stays');

  const ofY = (await buyerApi(sys, y!).list()).body;
  t.same(ofY.items.map((n: { data: unknown }) => n.data), [ownOfY!.data], 'y sees only their own');
  t.equal(ofY.unread, 1, 'and counts only their own');
  const foreign = await api.post(`/${ofY.items[0].id}/read`);
  t.equal(foreign.status, 404, "x cannot mark y's notification");
  t.equal(foreign.body.code, 'NOT_FOUND');

  const allRead = await api.post('/read', {});
  t.same(allRead.body, { read: 5 }, 'the five unread (one was read already)');
  t.ok((await api.list()).body.items.every((n: { readAt: string | null }) => n.readAt !== null), 'every one of x read');
  t.same((await buyerApi(sys, y!).list()).body.items.map((n: { readAt: unknown }) => n.readAt), [null], "y's untouched");
  t.same((await api.post('/read')).body, { read: 0 }, 'nothing left to mark');
  t.ok(later, 'told later');
});

t.test('retention: at most the cap per buyer (the newest), nothing past its age', async (t) => {
  const sys = await boot(t, { worker: true, env: { ...NOTIFICATIONS_ONLY, STAMPEDE_NOTIFICATION_INBOX_CAP: '3', STAMPEDE_NOTIFICATION_RETENTION_DAYS: '30' } });
  const amqp = await openAmqp(t, sys.cfg);
  const [x, y] = await sys.createBuyers(2);
  const lots = await Promise.all(Array.from({ length: 5 }, () => createAuction(sys.pool, sys.redis)));
  await tellLost(sys, amqp, lots.slice(0, 2), y!);
  await tellLost(sys, amqp, lots, x!);
  await waitFor('x pruned to 3', async () => (await sys.pool.query('SELECT 1 FROM notifications WHERE recipient_id = $1', [x])).rowCount === 3);
  const page = (await buyerApi(sys, x!).list()).body;
  t.same(page.items.map((n: { data: { auctionId: string } }) => n.data.auctionId), lots.slice(2).reverse().map((l) => l.id), 'the three newest kept');
  t.equal(page.unread, 3);
  t.equal((await buyerApi(sys, y!).list()).body.items.length, 2, "y's inbox is y's own count");

  // A notification from before the retention age is neither shown nor counted, nor markable.
  await sys.pool.query(`UPDATE notifications SET created_at = now() - interval '31 days' WHERE recipient_id = $1 AND event_id = $2`, [y, `${lots[0]!.id}:lost:${y}`]);
  const ofY = (await buyerApi(sys, y!).list()).body;
  t.same(ofY.items.map((n: { data: { auctionId: string } }) => n.data.auctionId), [lots[1]!.id], 'the old one is gone from the page');
  t.equal(ofY.unread, 1, 'and from the count');
  const { rows } = await sys.pool.query<{ seq: number }>('SELECT seq FROM notifications WHERE event_id = $1', [`${lots[0]!.id}:lost:${y}`]);
  t.equal((await buyerApi(sys, y!).post(`/ntf_${rows[0]!.seq}/read`)).status, 404, 'an expired notification cannot be marked');
  // The scheduler's sweep deletes it, and only it.
  const others = async () => (await sys.pool.query('SELECT 1 FROM notifications WHERE recipient_id = ANY($1)', [[x, y]])).rowCount;
  const kept = await others();
  const sweep = new RetentionSweep({ pool: sys.pool, retention: retentionOf(sys.cfg), log: createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'test'), everyMs: 60_000 });
  t.equal(await sweep.sweep(), 1, 'the sweep deletes the expired row');
  t.equal((await sys.pool.query('SELECT 1 FROM notifications WHERE event_id = $1', [`${lots[0]!.id}:lost:${y}`])).rowCount, 0, 'gone');
  t.equal(await others(), kept! - 1, 'nothing else deleted');
  t.equal(await sweep.sweep(), 0, 'a second sweep finds nothing');
});
