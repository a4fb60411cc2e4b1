/**
 * The notification types beyond the auction's results, end to end on the
 * real services (api, relay, orders, auctions, notifications and e-mail
 * workers, a real SMTP server): a purchase confirmed, failed for want of
 * funds, or cancelled reaches its buyer's inbox (critical: whatever in_app
 * and e-mail switches they set) and nobody else's, once however often its
 * settlement is delivered; the promoter's doubling tells its bidder
 * bid.doubled; a second-chance winner is told auction.offer (the debit, once)
 * while the leader who could not pay is told auction.offer_failed; a
 * malformed one of these events is dead-lettered as poison with its reason.
 */
import t from 'tap';
import type { ParsedMail } from 'mailparser';
import { boot, waitFor, type HttpAnswer } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { bid, closeWhenDue, createAuction, waitSettled } from '../helpers/auctions.js';
import { buyerWithPreferences, inboxRows, publishAnnouncements, waitInbox, type InboxRow } from '../helpers/notifications.js';
import { smtpCatcher } from '../helpers/smtp.js';
import { creditWallet } from '../../src/buyers/buyers.js';
import { promoteBid } from '../../src/auctions/scripts.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { MAX_AUCTION_AMOUNT } from '../../src/auctions/rules.js';
import { EVENTS } from '../../src/events/catalogue.js';
import { PURCHASE_ANNOUNCEMENT_SOURCE } from '../../src/sales/announcements.js';
import { ANNOUNCEMENT_SOURCE } from '../../src/auctions/announcements.js';
import { deadLetterQueue, retryQueue } from '../../src/platform/messaging/topology.js';
import { newBidId, newPurchaseId } from '../../src/platform/ids.js';
import type { CloudEvent } from '../../src/platform/messaging/events.js';

const smtp = await smtpCatcher(t);
const sys = await boot(t, {
  relay: true, worker: true,
  env: { STAMPEDE_WORKER_QUEUES: 'orders,auctions,notifications,email', STAMPEDE_SMTP_URL: smtp.url, STAMPEDE_SMTP_TIMEOUT_MS: '2000' },
});
const amqp = await openAmqp(t, sys.cfg);
const { topology } = sys.cfg;
const workQueues = [topology.orders, topology.auctions, topology.notifications, topology.email]
  .flatMap((c) => [c.queue, ...topology.retryDelaysMs.map((d) => retryQueue(c, d))]);
const quiet = () => amqp.quiet(800, 60_000, workQueues);

const PRICE = 1000;
const mailsTo = (address: string): ParsedMail[] =>
  smtp.mails.filter((m) => (Array.isArray(m.to) ? m.to : [m.to]).some((a) => a?.value.some((v) => v.address === address)));

/** A buyer with an e-mail address, these preferences and `funds` EUR minor units in their wallet. */
async function buyer(preferences: Record<string, unknown>, funds: number): Promise<{ id: string; email: string }> {
  const b = await buyerWithPreferences(sys, preferences);
  if (funds > 0) await creditWallet(sys.pool, b.id, 'EUR', funds, `credit:notification-types:${b.id}`);
  return b;
}

async function purchased(buyerId: string, saleId: string, quantity: number): Promise<string> {
  const r: HttpAnswer = await sys.purchase(buyerId, saleId, { quantity });
  if (r.status !== 202) throw new Error(`purchase refused: ${JSON.stringify(r.body)}`);
  return r.body.purchaseId;
}

const statusOf = async (buyerId: string, purchaseId: string) =>
  (await fetch(`${sys.url}/v1/purchases/${purchaseId}`, { headers: { authorization: `Bearer ${sys.token(buyerId)}` } }).then((r) => r.json())).status;

const settledAs = (buyerId: string, purchaseId: string, status: string) =>
  waitFor(`${purchaseId} ${status}`, async () => (await statusOf(buyerId, purchaseId)) === status);

const emailRecords = async (buyerId: string) =>
  (await sys.pool.query('SELECT event_id, type FROM notification_emails WHERE recipient_id = $1 ORDER BY event_id', [buyerId])).rows;

const shape = (rows: InboxRow[]) => rows.map((r) => [r.recipient_id, r.event_id, r.type]).sort();

t.test('purchases confirmed, failed and cancelled: each buyer told their own, in words, critical whatever the switches', async (t) => {
  const sale = await sys.createSale({ name: 'Sneaker drop', unitPrice: PRICE, perBuyerLimit: 3 });
  const rich = await buyer({}, 100_000);
  const poor = await buyer({}, 500);
  const canceller = await buyer({}, 100_000);
  // Every channel's in_app off and purchase e-mail off: in_app cannot be switched off for a critical type, e-mail can.
  const muted = await buyer({ channels: { in_app: false }, types: { 'purchase.confirmed': { email: false }, 'purchase.failed': { email: false } } }, 100_000);
  const bystander = await buyer({}, 100_000);

  const paid = await purchased(rich.id, sale.id, 2);
  const unpaid = await purchased(poor.id, sale.id, 1);
  const mutedPaid = await purchased(muted.id, sale.id, 1);
  const cancelled = await purchased(canceller.id, sale.id, 3);
  await settledAs(canceller.id, cancelled, 'confirmed');
  const del = await fetch(`${sys.url}/v1/purchases/${cancelled}`, { method: 'DELETE', headers: { authorization: `Bearer ${sys.token(canceller.id)}` } });
  t.equal(del.status, 202);
  const everyone = [rich.id, poor.id, canceller.id, muted.id, bystander.id];
  await waitInbox(sys.pool, everyone, 5);
  await waitFor('the e-mails', async () => mailsTo(rich.email).length + mailsTo(poor.email).length + mailsTo(canceller.email).length >= 4);
  await quiet();

  const rows = await inboxRows(sys.pool, everyone);
  t.same(shape(rows), [
    [rich.id, `${paid}:confirmed`, 'purchase.confirmed'],
    [poor.id, `${unpaid}:failed`, 'purchase.failed'],
    [canceller.id, `${cancelled}:confirmed`, 'purchase.confirmed'],
    [canceller.id, `${cancelled}:cancelled`, 'purchase.cancelled'],
    [muted.id, `${mutedPaid}:confirmed`, 'purchase.confirmed'],
  ].sort(), 'each buyer their own results; the bystander nothing');
  const row = (eventId: string) => rows.find((r) => r.event_id === eventId)!;

  t.match(row(`${paid}:confirmed`), { title: 'Your order for Sneaker drop is confirmed', body: 'You bought 2 × Sneaker drop for EUR 20.00, paid from your wallet.' });
  t.match(row(`${paid}:confirmed`).data, { purchaseId: paid, saleId: sale.id, buyerId: rich.id, quantity: 2, unitPrice: PRICE, currency: 'EUR', amount: 2000 });
  t.type(row(`${paid}:confirmed`).data.settledAt, 'number');

  t.match(row(`${unpaid}:failed`), {
    title: 'Your order for Sneaker drop failed',
    body: 'Your wallet did not hold the EUR 10.00 it costs, so your order of 1 × Sneaker drop was not placed. Nothing was charged.',
  });
  t.match(row(`${unpaid}:failed`).data, { purchaseId: unpaid, buyerId: poor.id, quantity: 1, amount: PRICE, reason: 'INSUFFICIENT_FUNDS' });

  t.match(row(`${cancelled}:cancelled`), {
    title: 'Your order for Sneaker drop was cancelled',
    body: 'As you asked, your order of 3 × Sneaker drop is cancelled. EUR 30.00 was refunded to your wallet.',
  });
  t.match(row(`${cancelled}:cancelled`).data, { purchaseId: cancelled, buyerId: canceller.id, quantity: 3, amount: 3000, refunded: 3000 });
  t.type(row(`${cancelled}:cancelled`).data.cancelledAt, 'number');

  t.same(mailsTo(rich.email).map((m) => m.subject), ['Your order for Sneaker drop is confirmed'], 'e-mail by default: the subject is the title');
  t.match(mailsTo(rich.email)[0]!.text, /^You bought 2 × Sneaker drop for EUR 20\.00, paid from your wallet\.\n/);
  t.same(mailsTo(poor.email).map((m) => m.subject), ['Your order for Sneaker drop failed']);
  t.same(mailsTo(canceller.email).map((m) => m.subject).sort(), ['Your order for Sneaker drop is confirmed', 'Your order for Sneaker drop was cancelled']);
  t.same(await emailRecords(muted.id), [], 'the muted buyer: no e-mail, only the inbox row their in_app switches could not remove');
  t.same(mailsTo(muted.email), []);
  t.same(await emailRecords(bystander.id), []);
  t.equal(await amqp.depth(deadLetterQueue(topology.notifications)), 0, 'nothing dead-lettered');
});

t.test('a cancellation that overtook its acceptance: cancelled, never charged, told so; the late acceptance tells nothing new', async (t) => {
  const sale = await sys.createSale({ name: 'Quick drop', unitPrice: PRICE });
  const b = await buyer({}, 100_000);
  const purchaseId = newPurchaseId(sale.id);
  const data = { purchaseId, saleId: sale.id, buyerId: b.id, quantity: 1, unitPrice: PRICE, currency: 'EUR', acceptedAt: Date.now() };
  const purchaseEvent = (type: { type: string }, id: string, payload: Record<string, unknown>): CloudEvent => ({
    specversion: '1.0', id, source: 'test', type: type.type, time: new Date().toISOString(), datacontenttype: 'application/json', data: payload,
  });
  // The cancellation reaches the orders worker first (its acceptance is still in a retry tier, say).
  await publishAnnouncements(amqp, topology.exchange, [purchaseEvent(EVENTS.purchaseCancelRequested, `evt_cancel_${purchaseId}`, { ...data, requestedAt: Date.now() })]);
  const [told] = await waitInbox(sys.pool, [b.id], 1);
  await publishAnnouncements(amqp, topology.exchange, [purchaseEvent(EVENTS.purchaseAccepted, `evt_accept_${purchaseId}`, data)]);
  await quiet();
  t.match(told, { event_id: `${purchaseId}:cancelled`, type: 'purchase.cancelled', title: 'Your order for Quick drop was cancelled',
    body: 'As you asked, your order of 1 × Quick drop is cancelled. You had not been charged.' });
  t.match(told!.data, { purchaseId, refunded: 0, amount: PRICE });
  t.same(shape(await inboxRows(sys.pool, [b.id])), [[b.id, `${purchaseId}:cancelled`, 'purchase.cancelled']], 'the acceptance after it: still cancelled, told once');
  t.equal((await sys.pool.query('SELECT balance FROM wallets WHERE user_id = $1', [b.id])).rows[0]!.balance, 100_000, 'never charged');
});

t.test('a settlement delivered again (the purchase event replayed) announces the same id: one inbox row', async (t) => {
  const sale = await sys.createSale({ name: 'Replayed drop', unitPrice: PRICE });
  const b = await buyer({}, 100_000);
  const poor = await buyer({}, 0);
  const paid = await purchased(b.id, sale.id, 1);
  const unpaid = await purchased(poor.id, sale.id, 1);
  await waitInbox(sys.pool, [b.id, poor.id], 2);
  await quiet();
  // What the relay published, as an operator's replay of the dead letters would publish it again.
  const { rows: logged } = await sys.pool.query<{ event_id: string; type: string; payload: Record<string, unknown>; occurred_at: Date }>(
    'SELECT event_id, type, payload, occurred_at FROM purchase_events WHERE purchase_id = ANY($1)', [[paid, unpaid]],
  );
  t.equal(logged.length, 2);
  const replayed: CloudEvent[] = logged.map((e) => ({
    specversion: '1.0', id: e.event_id, source: 'test:replay', type: e.type, time: e.occurred_at.toISOString(), datacontenttype: 'application/json', data: e.payload,
  }));
  for (let i = 0; i < 3; i++) await publishAnnouncements(amqp, topology.exchange, replayed);
  await publishAnnouncements(amqp, topology.exchange, replayed, true);
  await quiet();
  const rows = await inboxRows(sys.pool, [b.id, poor.id]);
  t.same(shape(rows), [[b.id, `${paid}:confirmed`, 'purchase.confirmed'], [poor.id, `${unpaid}:failed`, 'purchase.failed']].sort(),
    'five settlements of each purchase, one row each');
  t.equal(mailsTo(b.email).length, 1, 'and one e-mail');
  t.equal((await sys.pool.query('SELECT balance FROM wallets WHERE user_id = $1', [b.id])).rows[0]!.balance, 100_000 - PRICE, 'charged once');
});

t.test('the promoter doubles a bid: its bidder is told bid.doubled in_app, nobody else', async (t) => {
  const a = await createAuction(sys.pool, sys.redis, { promoter: true });
  const x = await buyer({}, 100_000);
  const y = await buyer({}, 100_000);
  const xb = await bid(sys.redis, a, x.id, 1000);
  await bid(sys.redis, a, y.id, 1500);
  const doubled = await promoteBid(sys.redis, a.id, (await sys.redis.hget(auctionKeys.standing(a.id), x.id))!, MAX_AUCTION_AMOUNT);
  t.match(doubled, { buyerId: x.id, added: 1000, price: 2000 });
  const rows = await waitFor('the doubling told', async () => {
    const r = await inboxRows(sys.pool, [x.id, y.id]);
    return r.some((n) => n.type === 'bid.doubled') ? r : undefined;
  });
  await quiet();
  const all = await inboxRows(sys.pool, [x.id, y.id]);
  t.same(all.filter((r) => r.type === 'bid.doubled').map((r) => r.recipient_id), [x.id], 'the bidder alone');
  t.same(all.filter((r) => r.recipient_id === y.id), [], 'y, whom the doubling overtook, is told nothing');
  const told = rows.find((r) => r.type === 'bid.doubled')!;
  t.match(told.event_id, new RegExp(`^${a.id}:\\d+$`), 'keyed by the logged event');
  t.equal(told.title, 'Your bid on Test lot was doubled');
  t.equal(told.body, 'The promoter added EUR 10.00: your bid is now EUR 20.00, and the house pays EUR 10.00 of the price if you win. The price is now EUR 20.00.');
  t.same(told.data, { auctionId: a.id, buyerId: x.id, bidId: xb, added: 1000, amount: 2000, maxAmount: 2000, bonus: 1000, price: 2000, doubledAt: told.data.doubledAt },
    'no other buyer named in its data');
  t.same((await emailRecords(x.id)).filter((e) => e.type === 'bid.doubled'), [], 'in_app only by default');
});

t.test('a second-chance offer: the leader cannot pay, the next bidder takes the lot and is told auction.offer', async (t) => {
  const a = await createAuction(sys.pool, sys.redis, { endsAt: Date.now() + 600, softCloseMs: 0, reservePrice: 1500 });
  const x = await buyer({}, 0);
  const y = await buyer({}, 100_000);
  const z = await buyer({}, 100_000);
  await bid(sys.redis, a, z.id, 1000);
  await bid(sys.redis, a, x.id, 1100, 3000);
  await bid(sys.redis, a, y.id, 1200, 2000);
  await closeWhenDue(sys.redis, a.id);
  await waitSettled(sys.pool, a.id);
  await waitInbox(sys.pool, [x.id, y.id, z.id], 4);
  await waitFor('the e-mails', async () => mailsTo(y.email).length >= 1);
  await quiet();
  const rows = await inboxRows(sys.pool, [x.id, y.id, z.id]);
  const outbid = rows.find((r) => r.type === 'auction.outbid')!;
  t.same(shape(rows), [
    [x.id, `${a.id}:offer_failed:${x.id}`, 'auction.offer_failed'],
    [y.id, `${a.id}:offer`, 'auction.offer'],
    [z.id, `${a.id}:lost:${z.id}`, 'auction.lost'],
    [z.id, outbid.event_id, 'auction.outbid'],
  ].sort(), 'y is told the offer and no plain win; x that they could not pay');
  const offer = rows.find((r) => r.type === 'auction.offer')!;
  t.equal(offer.title, 'Second-chance offer: Test lot is yours');
  t.equal(offer.body, 'The winning bidder could not pay, so the lot went to you at your bid of EUR 20.00. Your wallet was debited EUR 20.00.');
  t.same(offer.data, { auctionId: a.id, buyerId: y.id, bidId: offer.data.bidId, currency: 'EUR', price: 2000, paid: 2000, bonus: 0, rank: 2 });
  t.match(rows.find((r) => r.type === 'auction.offer_failed'), { title: 'Your winning bid on Test lot could not be paid' });
  t.same(mailsTo(y.email).map((m) => m.subject), ['Second-chance offer: Test lot is yours'], 'one mail for the one debit');
});

t.test('auction.offer is critical: its in_app copy cannot be switched off', async (t) => {
  const b = await buyerWithPreferences(sys, {});
  const put = await fetch(`${sys.url}/v1/notification-preferences`, {
    method: 'PUT', headers: { authorization: `Bearer ${sys.token(b.id)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ types: { 'auction.offer': { in_app: false } } }),
  });
  t.equal(put.status, 400);
  t.same((await put.json()).errors, [{ path: '/types/auction.offer/in_app', message: 'cannot be switched off' }]);
});

t.test('poison: a malformed purchase result, doubling or offer is dead-lettered at once with its reason', async (t) => {
  const sale = await sys.createSale({ name: 'Poison drop', unitPrice: PRICE });
  const a = await createAuction(sys.pool, sys.redis);
  const b = await buyer({}, 0);
  const purchaseId = newPurchaseId(sale.id);
  const settled = { purchaseId, saleId: sale.id, buyerId: b.id, quantity: 1, unitPrice: PRICE, currency: 'EUR', amount: PRICE };
  const event = (type: { type: string }, id: string, data: Record<string, unknown>, source = PURCHASE_ANNOUNCEMENT_SOURCE): CloudEvent => ({
    specversion: '1.0', id, source, type: type.type, time: new Date().toISOString(), datacontenttype: 'application/json', data,
  });
  const good = event(EVENTS.purchaseConfirmed, `${purchaseId}:confirmed`, { ...settled, settledAt: Date.now() });
  const bidId = newBidId(a.id);
  const doubling = { auctionId: a.id, seq: 3, bidId, buyerId: b.id, added: 1000, amount: 2000, maxAmount: 2000, bonus: 1000, price: 1600, doubledAt: Date.now(), leader: b.id, leaderBid: bidId };
  const cases: [string, CloudEvent, RegExp][] = [
    ['a failure without its reason in words', event(EVENTS.purchaseFailed, 'q1', { ...settled, reason: 'BROKE', settledAt: 1 }), /purchase\.failed\.v1: data\/reason must be equal to one of the allowed values/],
    ['a confirmation with an extra field', event(EVENTS.purchaseConfirmed, 'q2', { ...settled, settledAt: 1, admin: true }), /data\/admin is not allowed/],
    ['a cancellation with a negative refund', event(EVENTS.purchaseCancelled, 'q3', { ...settled, refunded: -1, cancelledAt: 1 }), /data\/refunded must be >= 0/],
    ['a purchase of an unknown sale', event(EVENTS.purchaseConfirmed, 'q4', { ...settled, saleId: 'sal_zzzzzzzzzzzz', settledAt: 1 }), /names an unknown sale sal_zzzzzzzzzzzz/],
    ['a doubling without its bonus', event(EVENTS.auctionBidDoubled, 'q5', { ...doubling, bonus: undefined }, 'stampede:relay'), /auction\.bid_doubled\.v1: data\/bonus is required/],
    ['an offer at rank 1', event(EVENTS.auctionOffer, 'q6', { auctionId: a.id, buyerId: b.id, bidId, currency: 'EUR', price: 2000, paid: 2000, bonus: 0, rank: 1 }, ANNOUNCEMENT_SOURCE), /auction\.offer\.v1: data\/rank must be >= 2/],
  ];
  for (const [what, body] of cases) await amqp.sendToQueue(topology.notifications.queue, JSON.stringify(body), { messageId: `poison:${what}` });
  await amqp.sendToQueue(topology.notifications.queue, JSON.stringify(good), { messageId: 'good' });
  await quiet();

  const dead = await amqp.take(deadLetterQueue(topology.notifications), cases.length);
  const reasons = new Map(dead.map((m) => [m.properties.messageId as string, String(m.properties.headers?.['x-stampede-last-error'])]));
  for (const [what, , reason] of cases) t.match(reasons.get(`poison:${what}`), reason, `${what}: dead-lettered with its reason`);
  for (const m of dead) amqp.ch.ack(m);
  t.ok(dead.every((m) => !m.properties.headers?.['x-stampede-attempt']), 'none went through a retry tier');
  t.same(shape(await inboxRows(sys.pool, [b.id])), [[b.id, good.id, 'purchase.confirmed']], 'only the good one was told');
});
