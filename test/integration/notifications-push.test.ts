/**
 * The live push on the real services: once the notifications worker has
 * committed inbox rows, each new row is published on NOTIFICATIONS_CHANNEL
 * (its recipient and seq, with the item), the item exactly as the inbox API shows it; an
 * announcement delivered again publishes nothing more.
 *
 * The channel is shared by every Redis database (other test sessions
 * publish on it too): only messages naming this file's own buyers count.
 */
import t from 'tap';
import { boot, call, sleep, testRedis, waitFor } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, publishAnnouncements, waitInbox } from '../helpers/notifications.js';
import { NOTIFICATIONS_CHANNEL } from '../../src/notifications/keys.js';
import { deliveriesOf } from '../../src/notifications/push.js';

t.test('each new inbox row is published once, as the inbox shows it; redelivery publishes nothing', async (t) => {
  const sys = await boot(t, { worker: true, env: { STAMPEDE_WORKER_QUEUES: 'notifications' } });
  const amqp = await openAmqp(t, sys.cfg);
  const [x, y] = await sys.createBuyers(2);
  const ours = new Set([x!, y!]);
  const heard: { buyerId: string; item: any }[] = [];
  const subscriber = testRedis(t, 'test-push-listener');
  subscriber.on('message', (channel: string, message: string) => {
    if (channel !== NOTIFICATIONS_CHANNEL) return;
    for (const { buyerId, itemJson } of deliveriesOf(message) ?? []) if (ours.has(buyerId)) heard.push({ buyerId, item: JSON.parse(itemJson) });
  });
  await subscriber.subscribe(NOTIFICATIONS_CHANNEL);

  const a = await createAuction(sys.pool, sys.redis);
  const events = [x!, y!].map((b) => announcement('lost', `${a.id}:lost:${b}`, { auctionId: a.id, buyerId: b, outcome: 'sold', currency: 'EUR', price: 1500 }));
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, events);
  await waitInbox(sys.pool, [x!, y!], 2);
  await waitFor('both pushes', async () => heard.length >= 2);

  for (const buyerId of [x!, y!]) {
    const inbox = await call(`${sys.url}/v1/notifications`, { headers: { authorization: `Bearer ${sys.token(buyerId)}` } });
    t.same(heard.filter((h) => h.buyerId === buyerId).map((h) => h.item), inbox.body.items, `${buyerId}: the item the inbox shows, once, for its own buyer`);
  }

  await publishAnnouncements(amqp, sys.cfg.topology.exchange, events);
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, events, true);
  await amqp.quiet(500, 30_000);
  await sleep(200);
  t.equal(heard.length, 2, 'redelivered announcements create no row and publish nothing');
});
