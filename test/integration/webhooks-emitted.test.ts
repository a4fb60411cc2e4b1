/**
 * The two catalogue events decided past the purchase or the bid, every
 * role real, told to the seller's endpoint on a real local receiver and
 * verified with `standardwebhooks`: sale.sold_out when settlement confirms
 * a sale's last unit (the settlement script's outbox entry), once for a
 * stock, again for a stock added and sold out; and auction.settled once the
 * auctions worker committed a close's settlement, sold or unsold, announced
 * again with the same id and data when the close is delivered again.
 */
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { boot, call, waitFor } from '../helpers/system.js';
import { newSeller, startReceiver } from '../helpers/webhooks.js';
import { bid, closeWhenDue, createAuction, waitSettled } from '../helpers/auctions.js';
import { closeAnnouncements } from '../../src/auctions/announcements.js';

const sys = await boot(t, { relay: true, env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true', STAMPEDE_WEBHOOK_POLL_MS: '20' } });
await sys.pool.query('DELETE FROM webhook_endpoints');
await sys.startWorker();
const receiver = await startReceiver(t);
const seller = await newSeller(sys, 'Grace');
const as = (method: string, path: string, body?: unknown) =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': seller.key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
const ep = await as('POST', '/v1/webhooks', { url: `${receiver.url}/grace`, events: ['sale.sold_out', 'auction.settled'] });
if (ep.status !== 201) throw new Error(`registration answered ${ep.status}`);
const signer = new Webhook(ep.body.secret);
type Payload = { id: string; type: string; data: Record<string, unknown> };
const told = () => receiver.of('/grace').map((r) => ({ ...(signer.verify(r.body, r.headers) as Payload), webhookId: r.headers['webhook-id'] }));

t.test('sale.sold_out: the confirmation of the last unit, once per stock', async (t) => {
  const now = Date.now();
  const sale = await as('POST', '/v1/sales', {
    name: 'Two left', sku: 'SO-1', unitPrice: 700, currency: 'EUR', stock: 2, perBuyerLimit: 1,
    startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
  });
  t.equal(sale.status, 201);
  const saleId = sale.body.id as string;
  const soldOut = () => told().filter((p) => p.type === 'stampede.sale.sold_out.v1' && p.data.saleId === saleId);
  const buyers = await sys.createBuyers(4, { currency: 'EUR', amount: 10_000 });
  t.equal((await sys.purchase(buyers[0]!, saleId)).status, 202);
  await sys.drained(saleId);
  t.equal((await sys.purchase(buyers[1]!, saleId)).status, 202);
  await sys.drained(saleId);
  await waitFor('sale.sold_out at the endpoint', async () => soldOut().length >= 1);
  const [first] = soldOut();
  t.equal(first!.id, `${saleId}:sold_out:2`, 'named by the sale and its stock');
  t.match(first!.data, { saleId, stock: 2 });
  t.ok(Number(first!.data.soldOutAt) >= now, 'soldOutAt is when it sold out');

  t.equal((await as('POST', `/v1/sales/${saleId}/stock`, { units: 1 })).status, 200);
  t.equal((await sys.purchase(buyers[2]!, saleId)).status, 202);
  await sys.drained(saleId);
  await waitFor('the second sale.sold_out', async () => soldOut().length >= 2);
  t.same(soldOut().map((p) => p.id), [`${saleId}:sold_out:2`, `${saleId}:sold_out:3`], 'stock added and sold out again: a second event');
  t.equal(new Set(soldOut().map((p) => p.webhookId)).size, 2, 'one message each');
});

t.test('auction.settled: sold and unsold, once each, the same event again on a redelivered close', async (t) => {
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: 100_000 });
  const sold = await createAuction(sys.pool, sys.redis, { endsAt: Date.now() + 400 });
  const unsold = await createAuction(sys.pool, sys.redis, { endsAt: Date.now() + 400, reservePrice: 50_000 });
  await sys.pool.query('UPDATE auctions SET seller_id = $1 WHERE id = ANY($2)', [seller.id, [sold.id, unsold.id]]);
  await bid(sys.redis, sold, x!, 1000);
  const yb = await bid(sys.redis, sold, y!, 1100, 1500);
  await bid(sys.redis, unsold, x!, 1000);
  await closeWhenDue(sys.redis, sold.id);
  await closeWhenDue(sys.redis, unsold.id);
  await waitSettled(sys.pool, sold.id);
  await waitSettled(sys.pool, unsold.id);
  const settled = (id: string) => told().filter((p) => p.type === 'stampede.auction.settled.v1' && p.data.auctionId === id);
  await waitFor('both auction.settled at the endpoint', async () => settled(sold.id).length >= 1 && settled(unsold.id).length >= 1);
  const { rows: [row] } = await sys.pool.query<{ settled_at: Date }>('SELECT settled_at FROM auctions WHERE id = $1', [sold.id]);
  const [s] = settled(sold.id);
  t.equal(s!.id, `${sold.id}:settled`);
  t.same(s!.data, { auctionId: sold.id, winner: y, bidId: yb, currency: 'EUR', price: 1100, paid: 1100, settledAt: row!.settled_at.getTime() }, 'the winner and what they paid');
  t.match(settled(unsold.id)[0]!.data, { auctionId: unsold.id, winner: '', bidId: '', price: null, paid: 0 }, 'unsold: nobody took the lot');

  // A redelivered close announces again from what is stored: the very same event, which the fan-out makes no new message of.
  const client = await sys.pool.connect();
  try {
    const again = (await closeAnnouncements(client, sold.id)).filter((a) => a.type === 'stampede.auction.settled.v1');
    t.same(again.map((a) => [a.id, a.data]), [[s!.id, s!.data]], 'announced again: the same id and data');
  } finally {
    client.release();
  }
  t.equal((await sys.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_deliveries WHERE event_id = $1', [`${sold.id}:settled`])).rows[0]!.n, 1, 'one message');
});
