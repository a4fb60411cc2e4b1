/**
 * Fault: auction events delivered more than once, out of order, or not
 * events at all. A close redelivered three times in a row, to two workers
 * at once and again long after its settlement debits the winner once; every
 * logged event is one row of the log; the announcements come again with the
 * same ids and bodies. A close that overtakes the bids it follows settles
 * from its own offers, and the late bids still get their bidders told.
 * Poison goes to the auctions dead-letter queue with a precise reason, and
 * changes nothing.
 */
import t, { type Test } from 'tap';
import type { GetMessage } from 'amqplib';
import { boot, type System } from '../helpers/system.js';
import { faultEnv, openAmqp, startWorkers as startAll, type Amqp } from '../helpers/fault-kit.js';
import {
  ANNOUNCEMENTS_UNCONSUMED, announcementsOf, auctionLedger, auctionRow, balanceOf, bid, closeWhenDue, collectAnnouncements, createAuction, logged, offersOf, waitLogged,
  waitSettled, type Announcement,
} from '../helpers/auctions.js';
import { deadLetterQueue, retryQueue } from '../../src/platform/messaging/topology.js';
import { ANNOUNCEMENT_SOURCE } from '../../src/auctions/announcements.js';
import { promoteBid, readLiveAuction } from '../../src/auctions/scripts.js';
import { newAuctionId, newBidId, newUserId } from '../../src/platform/ids.js';

const FUNDS = 100_000;

/** Starts n workers, waits until each consumes the auctions queue. */
const startWorkers = (sys: System, amqp: Amqp, n: number) => startAll(sys, amqp, n, sys.cfg.topology.auctions.queue);

const auctionQueues = (sys: System) => [sys.cfg.topology.auctions.queue, ...sys.cfg.topology.retryDelaysMs.map((d) => retryQueue(sys.cfg.topology.auctions, d))];

/** Waits for the auctions queues to drain, stops the workers, proves every copy was acked. */
async function settleAndStop(t: Test, sys: System, amqp: Amqp, stop: () => Promise<void>): Promise<void> {
  await amqp.quiet(800, 60_000, auctionQueues(sys));
  await stop();
  const dlq = deadLetterQueue(sys.cfg.topology.auctions);
  for (const q of [...auctionQueues(sys), dlq]) t.equal(await amqp.depth(q), 0, `${q} is empty: every copy acked, nothing dead-lettered`);
}

/** Every announcement now on the notifications queue (taken and acked). */
async function drainAnnouncements(amqp: Amqp, queue: string, auctionId: string): Promise<Announcement[]> {
  const out: Announcement[] = [];
  for (let m = await amqp.ch.get(queue, { noAck: false }); m; m = await amqp.ch.get(queue, { noAck: false })) {
    amqp.ch.ack(m);
    // Outbid announcements come with every delivery of a bid; the close's results are what these tests count.
    for (const a of announcementsOf(m)) if (a.source === ANNOUNCEMENT_SOURCE && a.data.auctionId === auctionId && a.type !== 'stampede.auction.outbid.v1') out.push(a);
  }
  return out;
}

const republish = (amqp: Amqp, exchange: string, m: Pick<GetMessage, 'content' | 'properties'> & { fields: { routingKey: string } }) =>
  amqp.publish(exchange, m.fields.routingKey, m.content, { ...m.properties, headers: { ...m.properties.headers } });

t.test('a close delivered many times (in a row, to two workers, after settlement) debits the winner once', async (t) => {
  const sys = await boot(t, { api: false, relay: true, env: faultEnv(ANNOUNCEMENTS_UNCONSUMED) });
  const amqp = await openAmqp(t, sys.cfg);
  const { exchange, auctions, notifications } = sys.cfg.topology;
  const a = await createAuction(sys.pool, sys.redis, { promoter: true, endsAt: Date.now() + 500, softCloseMs: 0, reservePrice: 1500 });
  const [x, y, z] = await sys.createBuyers(3, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, z!, 1000);
  const xb = await bid(sys.redis, a, x!, 1100, 3000);
  await bid(sys.redis, a, y!, 1200, 2000);
  t.match(await promoteBid(sys.redis, a.id, xb, 1e12), { added: 1100 });
  await closeWhenDue(sys.redis, a.id);
  const seq = (await readLiveAuction(sys.redis, a.id))!.seq;
  t.equal(seq, 5, 'three bids, a doubling, the close');

  // No worker yet: the relay's very messages, captured off the queue.
  const { messages, events: originals } = await amqp.takeEvents(auctions.queue, seq);
  t.equal(await amqp.depth(auctions.queue), 0, 'the relay published each event once');
  t.same(originals.map((m) => m.properties.messageId).sort(), Array.from({ length: seq }, (_, i) => `${a.id}:${i + 1}`).sort());

  const stopWorkers = await startWorkers(sys, amqp, 2);
  for (const m of originals) for (let copy = 0; copy < 3; copy++) await republish(amqp, exchange, m);
  for (const m of messages) amqp.ch.ack(m);
  await waitSettled(sys.pool, a.id);
  await waitLogged(sys.pool, sys.redis, a.id);
  await settleAndStop(t, sys, amqp, stopWorkers);

  // x doubled from 1100 to 2200 (max 4100); price = y's 2000 + 100 = 2100, at least x's own 2200.
  const expectLedger = [[`auction:${a.id}:promotion`, x, 1100, 'promotion'], [`auction:${a.id}:win`, x, -2200, 'auction']];
  t.same(await auctionLedger(sys.pool, a.id), expectLedger, 'one promotion credit, one auction debit');
  t.equal(await balanceOf(sys.pool, x!), FUNDS - 1100, 'debited once: price - bonus');
  t.same(await offersOf(sys.pool, a.id), [[1, x, 2200, 1100, 'paid']]);
  t.match(await auctionRow(sys.pool, a.id), { status: 'closed', outcome: 'sold', winner_id: x, final_price: 2200, house_bonus: 1100 });
  t.same(await logged(sys.pool, a.id), { seq, rows: seq }, 'every event is one row of the log');

  const expected = [`${a.id}:won`, `${a.id}:lost:${y}`, `${a.id}:lost:${z}`].sort();
  const first = await drainAnnouncements(amqp, notifications.queue, a.id);
  t.same([...new Set(first.map((m) => m.id))].sort(), expected, 'won, and lost to each other bidder');
  for (const m of first) {
    t.equal(m.messageId, m.id, 'the message id is the event id');
    t.equal(m.body, first.find((f) => f.id === m.id)!.body, `every copy of ${m.id} is the same event`);
  }

  // Long after settlement: the whole log again, twice, to two workers.
  const before = await balanceOf(sys.pool, x!);
  const stopAgain = await startWorkers(sys, amqp, 2);
  for (let copy = 0; copy < 2; copy++) for (const m of originals) await republish(amqp, exchange, m);
  await settleAndStop(t, sys, amqp, stopAgain);
  t.same(await auctionLedger(sys.pool, a.id), expectLedger, 'still one debit');
  t.equal(await balanceOf(sys.pool, x!), before);
  t.same(await offersOf(sys.pool, a.id), [[1, x, 2200, 1100, 'paid']]);
  t.same(await logged(sys.pool, a.id), { seq, rows: seq });
  const again = await drainAnnouncements(amqp, notifications.queue, a.id);
  t.ok(again.length >= expected.length, 'announced again');
  t.same([...new Set(again.map((m) => m.id))].sort(), expected, 'with the same ids');
  for (const m of again) t.equal(m.body, first.find((f) => f.id === m.id)!.body, `${m.id}: the same body`);
});

t.test('a close that overtakes its bids settles from its own offers; late bids are logged and their bidders told', async (t) => {
  const sys = await boot(t, { api: false, relay: true, env: faultEnv(ANNOUNCEMENTS_UNCONSUMED) });
  const amqp = await openAmqp(t, sys.cfg);
  const { exchange, auctions, notifications } = sys.cfg.topology;
  const a = await createAuction(sys.pool, sys.redis, { endsAt: Date.now() + 500, softCloseMs: 0, reservePrice: 1500 });
  const [x, y, z] = await sys.createBuyers(3, { currency: 'EUR', amount: FUNDS });
  await bid(sys.redis, a, z!, 1000);
  await bid(sys.redis, a, x!, 1100, 3000);
  await bid(sys.redis, a, y!, 1200, 2000);
  await closeWhenDue(sys.redis, a.id);
  const { messages, events: originals } = await amqp.takeEvents(auctions.queue, 4);
  const closed = originals.find((m) => m.fields.routingKey === 'auction.closed.v1')!;
  const bids = originals.filter((m) => m !== closed);

  const stopWorkers = await startWorkers(sys, amqp, 1);
  await republish(amqp, exchange, closed);
  await waitSettled(sys.pool, a.id);
  t.same(await logged(sys.pool, a.id), { seq: 4, rows: 1 }, 'only the close is logged');
  t.same(await offersOf(sys.pool, a.id), [[1, x, 2100, 0, 'paid']]);
  t.equal(await balanceOf(sys.pool, x!), FUNDS - 2100);
  await collectAnnouncements(amqp.ch, notifications.queue, a.id, [`${a.id}:won`, `${a.id}:lost:${y}`]);

  for (const m of bids) await republish(amqp, exchange, m);
  for (const m of messages) amqp.ch.ack(m);
  await waitLogged(sys.pool, sys.redis, a.id);
  const late = await collectAnnouncements(amqp.ch, notifications.queue, a.id, [`${a.id}:lost:${z}`]);
  t.notOk(late.some((m) => m.id === `${a.id}:won`), 'a late bid never announces a second win');
  await settleAndStop(t, sys, amqp, stopWorkers);
  t.equal(await balanceOf(sys.pool, x!), FUNDS - 2100, 'still debited once');
  t.same(await logged(sys.pool, a.id), { seq: 4, rows: 4 });
});

t.test('poison auction messages are dead-lettered with a reason; good ones settle; nothing changes', async (t) => {
  const sys = await boot(t, { api: false, relay: true, worker: true, env: faultEnv(ANNOUNCEMENTS_UNCONSUMED) });
  const amqp = await openAmqp(t, sys.cfg);
  const { exchange, auctions } = sys.cfg.topology;
  const dlq = deadLetterQueue(auctions);
  const a = await createAuction(sys.pool, sys.redis, { endsAt: Date.now() + 500, softCloseMs: 0 });
  const [x] = await sys.createBuyers(1, { currency: 'EUR', amount: FUNDS });
  const buyer = newUserId();
  const ghost = newAuctionId();
  const envelope = (type: string, id: string, data: Record<string, unknown>) =>
    JSON.stringify({ specversion: '1.0', id, source: 'stampede:fault-test', type: `stampede.auction.${type}.v1`, time: new Date().toISOString(), datacontenttype: 'application/json', data });
  const closedData = (auctionId: string, offers: unknown[]) => ({
    auctionId, seq: 7, reason: 'time', closedAt: Date.now(), price: 2000, leader: buyer, leaderBid: newBidId(auctionId), reserveMet: true, offers,
  });
  const poison: { name: string; key: string; body: string; reason: RegExp }[] = [
    { name: 'not JSON', key: 'auction.closed.v1', body: '{"specversion": nope', reason: /^message is not JSON$/ },
    { name: 'a JSON array', key: 'auction.bid_placed.v1', body: '[1,2]', reason: /^message is not an auction event$/ },
    { name: 'an unknown type', key: 'auction.closed.v1', body: envelope('refund_everyone', `${a.id}:90`, { auctionId: a.id, seq: 90 }), reason: /^unknown event type stampede\.auction\.refund_everyone\.v1$/ },
    { name: 'an id that is not <auction>:<seq>', key: 'auction.closed.v1', body: envelope('closed', 'evt-1', closedData(a.id, [])), reason: /its id is not <auctionId>:<seq>$/ },
    {
      name: 'a negative price offered', key: 'auction.closed.v1',
      body: envelope('closed', `${a.id}:7`, closedData(a.id, [{ buyerId: buyer, bidId: newBidId(a.id), price: -5000, bonus: 0 }])),
      reason: /data\.offers\[0\]\.price must be an integer of at least 1$/,
    },
    {
      name: 'a bonus that is not a number', key: 'auction.closed.v1',
      body: envelope('closed', `${a.id}:7`, closedData(a.id, [{ buyerId: buyer, bidId: newBidId(a.id), price: 5000, bonus: '1e9' }])),
      reason: /data\.offers\[0\]\.bonus must be an integer/,
    },
    {
      name: 'a bid of another auction', key: 'auction.bid_placed.v1',
      body: envelope('bid_placed', `${a.id}:8`, {
        auctionId: a.id, seq: 8, bidId: newBidId(ghost), buyerId: buyer, amount: 1000, maxAmount: 1000, placedAt: Date.now(), price: 1000, leader: buyer,
        leaderBid: newBidId(a.id), bidCount: 1, endsAt: Date.now(),
      }),
      reason: /data\.bidId must be a bid id of the auction$/,
    },
    { name: 'a cancellation naming no user', key: 'auction.cancelled.v1', body: envelope('cancelled', `${a.id}:9`, { auctionId: a.id, seq: 9, cancelledAt: 1, bidders: ['DROP TABLE'] }), reason: /data\.bidders must be a list of user ids$/ },
    // Well formed, but of an auction Postgres does not know: retried through every tier, then dead-lettered.
    {
      name: 'the close of an unknown auction', key: 'auction.closed.v1',
      body: envelope('closed', `${ghost}:7`, closedData(ghost, [{ buyerId: x, bidId: newBidId(ghost), price: 5000, bonus: 0 }])),
      reason: new RegExp(`^unknown auction ${ghost}$`),
    },
  ];
  for (const [i, p] of poison.entries()) await amqp.publish(exchange, p.key, p.body, { messageId: `poison-${i}` });
  // Meanwhile a real auction settles.
  await bid(sys.redis, a, x!, 1000);
  await closeWhenDue(sys.redis, a.id);
  await waitSettled(sys.pool, a.id);
  t.same(await offersOf(sys.pool, a.id), [[1, x, 1000, 0, 'paid']], 'the good messages settle');

  const dead = await amqp.take(dlq, poison.length, 30_000);
  for (const m of dead) amqp.ch.ack(m);
  for (const [i, p] of poison.entries()) {
    const m = dead.find((d) => d.properties.messageId === `poison-${i}`);
    t.ok(m, `${p.name}: dead-lettered`);
    t.match(String(m?.properties.headers?.['x-stampede-last-error']), p.reason, `${p.name}: the reason says why`);
    t.equal(m?.content.toString(), p.body, `${p.name}: the body is kept as it came`);
  }
  t.equal(dead.find((d) => d.properties.messageId === `poison-${poison.length - 1}`)?.properties.headers?.['x-stampede-attempt'], sys.cfg.topology.retryDelaysMs.length,
    'the unknown auction went through every retry tier first');
  const { rows } = await sys.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM auction_events WHERE auction_id = $1 AND seq > 2`, [a.id]);
  t.equal(rows[0]!.n, 0, 'no poison reached the log');
  t.same(await auctionLedger(sys.pool, ghost), []);
  t.same(await logged(sys.pool, a.id), { seq: 2, rows: 2 });
});
