/**
 * Notification preferences on the real services: GET answers every type and
 * channel filled in (the defaults of issue 13's table where the buyer set
 * nothing), PUT replaces the document, a buyer's opt-out per type or
 * channel keeps that type out of their inbox (and only theirs), and the
 * in_app copy of purchase and payment results cannot be switched off.
 */
import t from 'tap';
import { boot, call, type System } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, inboxRows, publishAnnouncements, waitInbox } from '../helpers/notifications.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { newBidId, randomId } from '../../src/platform/ids.js';

const sys = await boot(t, { worker: true, env: { STAMPEDE_WORKER_QUEUES: 'notifications' } });
const amqp = await openAmqp(t, sys.cfg);

function preferencesApi(sys: System, buyerId: string) {
  const headers = { authorization: `Bearer ${sys.token(buyerId)}`, 'content-type': 'application/json' };
  return {
    get: () => call(`${sys.url}/v1/notification-preferences`, { headers }),
    put: (doc: unknown) => call(`${sys.url}/v1/notification-preferences`, { method: 'PUT', headers, body: JSON.stringify(doc) }),
  };
}

const ALL = { in_app: true, email: true, sms: true };
const IN_APP_EMAIL = { in_app: true, email: true, sms: false };
const DEFAULT_TYPES = {
  'auction.created': IN_APP_EMAIL, 'auction.outbid': IN_APP_EMAIL, 'auction.won': IN_APP_EMAIL, 'auction.lost': IN_APP_EMAIL,
  'auction.offer': IN_APP_EMAIL, 'auction.offer_failed': IN_APP_EMAIL, 'auction.released': IN_APP_EMAIL,
  'bid.doubled': { in_app: true, email: false, sms: false },
  'purchase.confirmed': IN_APP_EMAIL, 'purchase.failed': IN_APP_EMAIL, 'purchase.cancelled': IN_APP_EMAIL,
  'sale.opening': ALL, announcement: { in_app: true, email: false, sms: false },
};

t.test('GET: every type and channel filled in with the defaults; the account e-mail', async (t) => {
  const email = `p-${randomId(8)}@example.test`;
  const [b] = await createBuyers(sys.pool, [{ name: 'prefs', email }]);
  const r = await preferencesApi(sys, b!.id).get();
  t.equal(r.status, 200);
  t.same(r.body, { channels: ALL, types: DEFAULT_TYPES, email, phone: null, timeZone: null, quietHours: null });
});

t.test('PUT replaces the document; GET answers it filled in; PUT {} goes back to the defaults', async (t) => {
  const [b] = await sys.createBuyers(1);
  const api = preferencesApi(sys, b!);
  const put = await api.put({
    channels: { email: true, sms: false }, types: { 'auction.outbid': { email: false }, 'bid.doubled': { email: true } },
    email: 'me@example.test', phone: '+33612345678', timeZone: 'Europe/Paris', quietHours: { start: '22:30', end: '07:00' },
  });
  t.equal(put.status, 200);
  const want = {
    channels: { in_app: true, email: true, sms: false },
    types: { ...DEFAULT_TYPES, 'auction.outbid': { in_app: true, email: false, sms: false }, 'bid.doubled': { in_app: true, email: true, sms: false } },
    email: 'me@example.test', phone: '+33612345678', timeZone: 'Europe/Paris', quietHours: { start: '22:30', end: '07:00' },
  };
  t.same(put.body, want, 'the answer is the filled-in document');
  t.same((await api.get()).body, want, 'and GET says the same');
  t.same((await api.put(put.body)).body, want, "PUT of GET's answer changes nothing");
  t.same((await api.put({})).body, { channels: ALL, types: DEFAULT_TYPES, email: null, phone: null, timeZone: null, quietHours: null }, 'PUT {}: the defaults');
});

t.test('critical types: their in_app copy cannot be switched off, and ignores the in_app channel switch', async (t) => {
  const [x, y] = await sys.createBuyers(2);
  const api = preferencesApi(sys, x!);
  for (const type of ['purchase.confirmed', 'purchase.failed', 'purchase.cancelled', 'auction.won', 'auction.offer_failed']) {
    const r = await api.put({ types: { [type]: { in_app: false } } });
    t.equal(r.status, 400, `${type} in_app off: 400`);
    t.same(r.body.errors, [{ path: `/types/${type}/in_app`, message: 'cannot be switched off' }], 'naming the field');
  }
  t.same((await api.get()).body.types, DEFAULT_TYPES, 'nothing was stored');
  // Every channel off, and every non-critical type's in_app too.
  const off = await api.put({ channels: { in_app: false, email: false, sms: false }, types: { 'auction.lost': { in_app: false }, 'auction.won': { email: false } } });
  t.equal(off.status, 200);
  t.same(off.body.types['auction.won'], { in_app: true, email: false, sms: false }, 'a critical type answers in_app on');

  const a = await createAuction(sys.pool, sys.redis);
  const won = announcement('won', `${a.id}:won`, { auctionId: a.id, buyerId: x, bidId: newBidId(a.id), currency: 'EUR', price: 2000, paid: 2000, bonus: 0 });
  const lostX = announcement('lost', `${a.id}:lost:${x}`, { auctionId: a.id, buyerId: x, outcome: 'sold', currency: 'EUR', price: 2000 });
  const outbidX = announcement('outbid', `${newBidId(a.id)}:outbid`, { auctionId: a.id, buyerId: x, price: 1500, byBid: newBidId(a.id) });
  const lostY = announcement('lost', `${a.id}:lost:${y}`, { auctionId: a.id, buyerId: y, outcome: 'sold', currency: 'EUR', price: 2000 });
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [lostX, outbidX, won, lostY]);
  await waitInbox(sys.pool, [x!, y!], 2);
  await amqp.quiet(500, 20_000, [sys.cfg.topology.notifications.queue]);
  t.same((await inboxRows(sys.pool, [x!, y!])).map((r) => [r.recipient_id, r.type]).sort(), [[x, 'auction.won'], [y, 'auction.lost']].sort(),
    "x gets only the payment result; y's defaults are untouched by x's choices");
});

t.test('an opt-out per type keeps only that type out of the inbox', async (t) => {
  const [x] = await sys.createBuyers(1);
  t.equal((await preferencesApi(sys, x!).put({ types: { 'auction.outbid': { in_app: false } } })).status, 200);
  const a = await createAuction(sys.pool, sys.redis);
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [
    announcement('outbid', `${newBidId(a.id)}:outbid`, { auctionId: a.id, buyerId: x, price: 1500, byBid: newBidId(a.id) }),
    announcement('released', `${a.id}:released:${x}`, { auctionId: a.id, buyerId: x, cancelledAt: Date.now() }),
  ]);
  await waitInbox(sys.pool, [x!], 1);
  await amqp.quiet(500, 20_000, [sys.cfg.topology.notifications.queue]);
  t.same((await inboxRows(sys.pool, [x!])).map((r) => r.type), ['auction.released']);
});
