/**
 * Auction settlement end to end on the real services: bids and closes
 * decided by the real scripts, relayed to RabbitMQ, logged and settled by
 * the auctions worker into Postgres, results announced on the notifications
 * queue. The winner pays once; a winner who cannot pay passes the lot to
 * the next bidder at their own bid; nobody paying, or a reserve not met,
 * leaves the lot unsold; the promoter's bonus is the house's; a cancelled
 * auction releases its bidders.
 */
import { Outcome } from '../../src/platform/redis/outcomes.js';
import t from 'tap';
import { boot } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import {
  ANNOUNCEMENTS_UNCONSUMED, auctionLedger, auctionRow, balanceOf, bid, closeWhenDue, collectAnnouncements, createAuction, logged, offersOf, waitLogged, waitSettled,
} from '../helpers/auctions.js';
import { closeAuction, promoteBid } from '../../src/auctions/scripts.js';

const sys = await boot(t, { api: false, relay: true, worker: true, env: ANNOUNCEMENTS_UNCONSUMED });
const amqp = await openAmqp(t, sys.cfg);
const notifications = sys.cfg.topology.notifications.queue;
const FUNDS = 100_000;

/** An auction that closes a moment after its bids (no soft close). */
const shortAuction = (over = {}) => createAuction(sys.pool, sys.redis, { endsAt: Date.now() + 400, softCloseMs: 0, ...over });

async function settled(auctionId: string) {
  await waitSettled(sys.pool, auctionId);
  await waitLogged(sys.pool, sys.redis, auctionId);
}

t.test('the leader pays the auction price once; the others are told they lost', async (t) => {
  const a = await shortAuction({ reservePrice: 1500 });
  const [x, y, z] = await sys.createBuyers(3, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, z!, 1000);
  const xb = await bid(sys.redis, a, x!, 1100, 3000);
  await bid(sys.redis, a, y!, 1200, 2000);
  t.match(await closeWhenDue(sys.redis, a.id), { code: Outcome.Applied, price: 2100, leader: x });
  await settled(a.id);

  t.match(await auctionRow(sys.pool, a.id), { status: 'closed', outcome: 'sold', winner_id: x, final_price: 2100, house_bonus: 0, closed: true, settled: true });
  t.same(await offersOf(sys.pool, a.id), [[1, x, 2100, 0, 'paid']], 'one offer, paid');
  t.same(await auctionLedger(sys.pool, a.id), [[`auction:${a.id}:win`, x, -2100, 'auction']], 'one auction debit');
  t.equal(await balanceOf(sys.pool, x!), FUNDS - 2100);
  t.equal(await balanceOf(sys.pool, y!), FUNDS, 'the runner-up pays nothing');
  t.same(await logged(sys.pool, a.id), { seq: 4, rows: 4 }, 'three bids and the close are in the log');
  const { rows: log } = await sys.pool.query('SELECT event_id, seq, type, bid_id, buyer_id FROM auction_events WHERE auction_id = $1 ORDER BY seq', [a.id]);
  t.match(log[1], { event_id: `${a.id}:2`, seq: 2, type: 'bid_placed', bid_id: xb, buyer_id: x });
  t.match(log[3], { event_id: `${a.id}:4`, type: 'closed', bid_id: null, buyer_id: null });

  const ann = await collectAnnouncements(amqp.ch, notifications, a.id, [`${a.id}:won`, `${a.id}:lost:${y}`, `${a.id}:lost:${z}`, `${xb}:outbid`]);
  // x's bid took the lead from z; y's proxy never took it from x.
  t.match(ann.find((m) => m.id === `${xb}:outbid`), { type: 'stampede.auction.outbid.v1', routingKey: 'auction.outbid.v1', data: { auctionId: a.id, buyerId: z, price: 1100, byBid: xb } });
  const won = ann.find((m) => m.id === `${a.id}:won`)!;
  t.match(won, { type: 'stampede.auction.won.v1', routingKey: 'auction.won.v1', messageId: `${a.id}:won` });
  t.same(won.data, { auctionId: a.id, buyerId: x, bidId: xb, currency: 'EUR', price: 2100, paid: 2100, bonus: 0 });
  t.match(ann.find((m) => m.id === `${a.id}:lost:${z}`), { type: 'stampede.auction.lost.v1', data: { buyerId: z, outcome: 'sold', price: 2100 } });
  t.equal(ann.length, 4, 'nothing else announced (one outbid: z by x)');
});

t.test('a winner who cannot pay: the next bidder pays their own bid (second-chance offer)', async (t) => {
  const a = await shortAuction({ reservePrice: 1500 });
  const [x, z] = await sys.createBuyers(2, { currency: 'EUR', amount: 500 });
  const [y] = await sys.createBuyers(1, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, z!, 1000);
  await bid(sys.redis, a, x!, 1100, 3000);
  const yb = await bid(sys.redis, a, y!, 1200, 2000);
  await closeWhenDue(sys.redis, a.id);
  await settled(a.id);

  t.same(await offersOf(sys.pool, a.id), [[1, x, 2100, 0, 'cannot_pay'], [2, y, 2000, 0, 'paid']], 'x could not pay 2100; y paid their own 2000');
  t.match(await auctionRow(sys.pool, a.id), { outcome: 'sold', winner_id: y, final_price: 2000 });
  t.same(await auctionLedger(sys.pool, a.id), [[`auction:${a.id}:win`, y, -2000, 'auction']]);
  t.equal(await balanceOf(sys.pool, x!), 500, 'x untouched');
  t.equal(await balanceOf(sys.pool, y!), FUNDS - 2000);
  const ann = await collectAnnouncements(amqp.ch, notifications, a.id, [`${a.id}:offer_failed:${x}`, `${a.id}:offer`, `${a.id}:lost:${z}`]);
  t.match(ann.find((m) => m.id === `${a.id}:offer_failed:${x}`)?.data, { buyerId: x, price: 2100, rank: 1, reason: 'cannot_pay' });
  const offer = ann.find((m) => m.id === `${a.id}:offer`)!;
  t.match(offer, { type: 'stampede.auction.offer.v1', routingKey: 'auction.offer.v1', messageId: `${a.id}:offer` });
  t.same(offer.data, { auctionId: a.id, buyerId: y, bidId: yb, currency: 'EUR', price: 2000, paid: 2000, bonus: 0, rank: 2 }, 'y is told the second-chance offer, not a plain win');
  t.notOk(ann.some((m) => m.id === `${a.id}:won`), 'no won beside it: one debit, told once');
  t.equal(ann.length, 3);
});

t.test('a deleted buyer cannot pay, whatever their wallet holds', async (t) => {
  const a = await shortAuction();
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, x!, 1000, 5000);
  await bid(sys.redis, a, y!, 1500);
  await sys.pool.query('UPDATE users SET deleted_at = now() WHERE id = $1', [x]);
  await closeWhenDue(sys.redis, a.id);
  await settled(a.id);
  t.same(await offersOf(sys.pool, a.id), [[1, x, 1600, 0, 'cannot_pay'], [2, y, 1500, 0, 'paid']]);
  t.equal(await balanceOf(sys.pool, x!), FUNDS);
  t.equal(await balanceOf(sys.pool, y!), FUNDS - 1500);
  await collectAnnouncements(amqp.ch, notifications, a.id, [`${a.id}:offer_failed:${x}`, `${a.id}:offer`]);
});

t.test('nobody can pay: the lot is unsold, every attempt recorded, nothing debited', async (t) => {
  const a = await shortAuction();
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: 0 });
  const [w] = await sys.createBuyers(1, { currency: 'USD', amount: FUNDS });
  await bid(sys.redis, a, x!, 1000);
  await bid(sys.redis, a, y!, 1100);
  await bid(sys.redis, a, w!, 1200);
  await closeWhenDue(sys.redis, a.id);
  await settled(a.id);
  t.same(await offersOf(sys.pool, a.id), [[1, w, 1200, 0, 'cannot_pay'], [2, y, 1100, 0, 'cannot_pay'], [3, x, 1000, 0, 'cannot_pay']],
    'no wallet at all, or only one in another currency');
  t.match(await auctionRow(sys.pool, a.id), { status: 'closed', outcome: 'unsold', winner_id: null, final_price: null, house_bonus: null, settled: true });
  t.same(await auctionLedger(sys.pool, a.id), []);
  t.equal(await balanceOf(sys.pool, w!, 'USD'), FUNDS);
  const ann = await collectAnnouncements(amqp.ch, notifications, a.id, [x, y, w].map((b) => `${a.id}:offer_failed:${b}`));
  t.equal(ann.length, 3);
});

t.test('reserve not met: unsold, no offer, no debit; every bidder told they lost', async (t) => {
  const a = await shortAuction({ reservePrice: 99_999 });
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, x!, 1000, 5000);
  await bid(sys.redis, a, y!, 1500);
  t.match(await closeWhenDue(sys.redis, a.id), { code: Outcome.Applied, reserveMet: false });
  await settled(a.id);
  t.match(await auctionRow(sys.pool, a.id), { status: 'closed', outcome: 'unsold', winner_id: null });
  t.same(await offersOf(sys.pool, a.id), []);
  t.same(await auctionLedger(sys.pool, a.id), []);
  t.equal(await balanceOf(sys.pool, x!), FUNDS);
  const ann = await collectAnnouncements(amqp.ch, notifications, a.id, [`${a.id}:lost:${x}`, `${a.id}:lost:${y}`]);
  t.same(ann.map((m) => m.data), [x, y].sort().map((b) => ({ auctionId: a.id, buyerId: b, outcome: 'unsold', currency: 'EUR', price: null })));
});

t.test('the promoter bonus: the house credits it (promotion), the winner pays the price less the bonus', async (t) => {
  const a = await createAuction(sys.pool, sys.redis, { promoter: true, endsAt: Date.now() + 400, softCloseMs: 0 });
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: FUNDS });
  const xb = await bid(sys.redis, a, x!, 1000);
  await bid(sys.redis, a, y!, 1500);
  t.match(await promoteBid(sys.redis, a.id, xb, 1e12), { code: Outcome.Applied, buyerId: x, added: 1000, price: 2000 });
  await closeWhenDue(sys.redis, a.id);
  await settled(a.id);
  t.same(await offersOf(sys.pool, a.id), [[1, x, 2000, 1000, 'paid']]);
  t.same(await auctionLedger(sys.pool, a.id), [
    [`auction:${a.id}:promotion`, x, 1000, 'promotion'],
    [`auction:${a.id}:win`, x, -2000, 'auction'],
  ]);
  t.equal(await balanceOf(sys.pool, x!), FUNDS - 1000, 'net debit: price - bonus');
  t.match(await auctionRow(sys.pool, a.id), { outcome: 'sold', final_price: 2000, house_bonus: 1000 });
  const [won] = await collectAnnouncements(amqp.ch, notifications, a.id, [`${a.id}:won`]);
  t.match(won!.data, { price: 2000, paid: 1000, bonus: 1000 });
  t.same(await logged(sys.pool, a.id), { seq: 4, rows: 4 }, 'the doubling is in the log');
});

t.test('buy-now: the buyer pays the buy-now price', async (t) => {
  const a = await createAuction(sys.pool, sys.redis, { buyNowPrice: 9000 });
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, y!, 1000, 9500);
  await bid(sys.redis, a, x!, 9000);
  await settled(a.id);
  t.same(await offersOf(sys.pool, a.id), [[1, x, 9000, 0, 'paid']]);
  t.equal(await balanceOf(sys.pool, x!), FUNDS - 9000);
  await collectAnnouncements(amqp.ch, notifications, a.id, [`${a.id}:won`, `${a.id}:lost:${y}`]);
});

t.test('a cancelled auction: status cancelled, bidders released and told', async (t) => {
  const a = await createAuction(sys.pool, sys.redis);
  const [x, y] = await sys.createBuyers(2, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, x!, 1000);
  await bid(sys.redis, a, y!, 1100);
  t.match(await closeAuction(sys.redis, a.id, 'cancel'), { code: Outcome.Applied, status: 'cancelled' });
  await settled(a.id);
  t.match(await auctionRow(sys.pool, a.id), { status: 'cancelled', outcome: null, closed: true, settled: false });
  t.same(await auctionLedger(sys.pool, a.id), []);
  const ann = await collectAnnouncements(amqp.ch, notifications, a.id, [`${a.id}:released:${x}`, `${a.id}:released:${y}`]);
  t.match(ann[0], { type: 'stampede.auction.released.v1', routingKey: 'auction.released.v1' });
  t.equal(ann.length, 2);
});
