/**
 * Issue 16, item 7: the hub's per-connection and per-topic state is bounded
 * by the connections open. A flood of real clients on sale, auction and
 * user topics, leaving every way a client leaves (a close frame, a cut
 * socket, a close while its subscription's snapshot is still being read, a
 * refused subscription), leaves nothing behind in the hub, and the node
 * takes new clients. (The process's RSS is measured by
 * load/autocannon/live-soak.ts; docs/performance.md has the figures.)
 */
import t from 'tap';
import { boot, waitFor } from '../helpers/system.js';
import { LiveClient } from '../helpers/live-client.js';
import { newAuctionId, newSaleId } from '../../src/platform/ids.js';
import { createAuction } from '../helpers/auctions.js';

const CLIENTS = 300;

t.test('a flood of clients that all leave leaves the hub holding nothing', async (t) => {
  const sys = await boot(t);
  const hub = sys.api!.live;
  const sales = await Promise.all([sys.createSale(), sys.createSale()]);
  const auction = await createAuction(sys.pool, sys.redis);
  const buyers = await sys.createBuyers(10);
  const idle = hub.held();

  for (let round = 0; round < 3; round++) {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => LiveClient.connect(sys.url)));
    await Promise.all(clients.map(async (c, i) => {
      const buyer = buyers[i % buyers.length]!;
      const topics = [`sale/${sales[i % 2]!.id}`, `auction/${auction.id}`, `auction/${newAuctionId()}`];
      if (i % 5 === 0) {
        // Leaves while its subscriptions' snapshots are still being read.
        for (const topic of topics) c.send({ op: 'subscribe', topic });
        c.ws.terminate();
        return;
      }
      for (const topic of topics) t.equal((await c.subscribe(topic)).op, 'subscribed', topic);
      t.equal((await c.subscribe(`sale/${newSaleId()}`)).code, 'NOT_FOUND', 'a sale that does not exist is refused');
      if (i % 3 === 0) {
        c.send({ op: 'auth', token: sys.token(buyer) });
        await c.next((f) => f.op === 'authenticated', 'authenticated');
        t.equal((await c.subscribe(`user/${buyer}`)).op, 'subscribed');
      }
      if (i % 7 === 0) await c.unsubscribe(topics[0]!);
    }));
    t.ok(hub.held().watchedSales >= 1 && hub.held().watchedAuctions >= 2, `round ${round}: the hub watches what its clients watch`);
    await waitFor(`round ${round}: a stock tick while they watch`, async () => hub.held().lastTicks >= 1);
    clients.forEach((c, i) => (i % 2 === 0 ? c.close() : c.ws.terminate()));
    await waitFor(`round ${round}: every client gone`, async () => hub.connections === 0);
    t.same(hub.held(), idle, `round ${round}: after ${CLIENTS} clients left, the hub holds what it held before any came`);
  }
  const fresh = await LiveClient.connect(sys.url);
  t.equal((await fresh.subscribe(`sale/${sales[0]!.id}`)).op, 'subscribed', 'and still takes new clients');
  t.match(hub.held(), { sockets: 1, subscriptions: 1, watchedSales: 1, watchedAuctions: 0 }, 'holding exactly what that client holds');
  fresh.close();
  await waitFor('the last client gone', async () => hub.connections === 0);
  t.same(hub.held(), idle);
});
