/**
 * Settlement first (src/notifications/settlement-first.ts) on the real
 * broker: while the orders queue holds a backlog above the setting, the
 * notifications worker waits before its batches, and tells the buyers once
 * the backlog is gone; a backlog that stays holds them back no longer than
 * the longest wait.
 */
import t from 'tap';
import { boot, sleep, waitFor } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, publishAnnouncements } from '../helpers/notifications.js';

t.test('a backlog of orders holds the buyers\' notifications back, for at most the longest wait', async (t) => {
  const sys = await boot(t, {
    worker: true,
    env: { STAMPEDE_WORKER_QUEUES: 'notifications', STAMPEDE_NOTIFICATIONS_YIELD_ABOVE: '3', STAMPEDE_NOTIFICATIONS_YIELD_MS: '6000' },
  });
  const amqp = await openAmqp(t, sys.cfg);
  const orders = sys.cfg.topology.orders.queue;
  const [x] = await sys.createBuyers(1);
  const lots = await Promise.all([createAuction(sys.pool, sys.redis), createAuction(sys.pool, sys.redis)]);
  const lost = (i: number) => announcement('lost', `${lots[i]!.id}:lost:${x}`, { auctionId: lots[i]!.id, buyerId: x, outcome: 'sold', currency: 'EUR', price: 1500 });
  const told = async (i: number) => (await sys.pool.query('SELECT 1 FROM notifications WHERE event_id = $1', [lost(i).id])).rowCount === 1;
  // No orders worker runs here: what is put on its queue stays there.
  const backlog = async () => {
    for (let i = 0; i < 5; i++) await amqp.sendToQueue(orders, '{}', { messageId: `backlog-${i}` });
  };

  await backlog();
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [lost(0)]);
  await sleep(1500);
  t.notOk(await told(0), 'not told while five orders wait (more than 3)');
  await amqp.ch.purgeQueue(orders);
  await waitFor('told once the backlog is gone', () => told(0));

  await backlog();
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [lost(1)]);
  await sleep(1500);
  t.notOk(await told(1), 'held back again');
  await waitFor('told after the longest wait, the backlog still there', () => told(1), 20_000);
  t.equal(await amqp.depth(orders), 5, 'the backlog was never touched');
  await amqp.ch.purgeQueue(orders);
});
