/**
 * auction.created end to end on the real services (api, relay, worker, a
 * real SMTP server): an operator creates an auction in a collection with
 * 10,000 followers, told in two parts side by side; each follower gets exactly one inbox row and nobody
 * else one, preferences respected (in_app switched off: no row; e-mail only
 * where wanted and addressed); the event delivered again creates nothing;
 * reloading the open auctions (a scheduler start) announces nothing again.
 */
import t from 'tap';
import { boot, waitFor } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { randomId } from '../../src/platform/ids.js';
import { fanOutParts, findFanOut, savePreferences } from '../../src/notifications/repository.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { deadLetterQueue, retryQueue } from '../../src/platform/messaging/topology.js';
import type { CloudEvent } from '../../src/platform/messaging/events.js';
import { routingKeyOf } from '../../src/platform/messaging/topology.js';

const FOLLOWERS = 10_000;
const noPrefs = { channels: {}, types: {}, email: null, phone: null, timeZone: null, quietStart: null, quietEnd: null };

t.test('one auction.created to 10,000 followers: one row each, as each wants, none twice, nobody else', async (t) => {
  const testStart = new Date();
  const sys = await boot(t, { relay: true, worker: true, env: { STAMPEDE_WORKER_QUEUES: 'notifications', STAMPEDE_FANOUT_CHUNK: '1000' } });
  const amqp = await openAmqp(t, sys.cfg);
  const collection = `Watches ${randomId(6)}`;
  // Half with an account address, half without.
  const made = await createBuyers(sys.pool, Array.from({ length: FOLLOWERS }, (_, i) => ({ name: `f${i}`, ...(i % 2 === 0 ? { email: `f${i}-${randomId(6)}@example.test` } : {}) })));
  const followers = made.map((b) => b.id);
  const addressed = new Set(made.filter((_, i) => i % 2 === 0).map((b) => b.id));
  const strangers = (await createBuyers(sys.pool, Array.from({ length: 50 }, (_, i) => ({ name: `s${i}`, email: `s${i}-${randomId(6)}@example.test` })))).map((b) => b.id);
  await sys.pool.query('INSERT INTO buyer_interests (buyer_id, collection) SELECT unnest($1::text[]), $2', [followers, collection]);
  await sys.pool.query('INSERT INTO buyer_interests (buyer_id, collection) SELECT unnest($1::text[]), $2', [strangers, `${collection}s`]);
  const [noInApp, noEmail] = [...addressed].slice(0, 2);
  await savePreferences(sys.pool, { ...noPrefs, buyerId: noInApp!, types: { 'auction.created': { in_app: false } } });
  await savePreferences(sys.pool, { ...noPrefs, buyerId: noEmail!, types: { 'auction.created': { email: false } } });

  const startsAt = Date.now() + 3_600_000;
  const created = await sys.operator('/v1/auctions', {
    method: 'POST', body: JSON.stringify({
      title: 'Omega Speedmaster 1969', collection, currency: 'EUR', startPrice: 150_000, reservePrice: 0, startsAt: new Date(startsAt).toISOString(),
      endsAt: new Date(startsAt + 600_000).toISOString(), softCloseSeconds: 10, increment: { type: 'absolute', amount: 100 },
    }),
  });
  t.equal(created.status, 201);
  const auctionId: string = created.body.id;
  const eventId = `${auctionId}:created`;
  const done = await waitFor('the fan-out to finish', async () => {
    const f = await findFanOut(sys.pool, eventId);
    return f?.finishedAt ? f : undefined;
  }, 120_000);
  t.match(done, { recipients: FOLLOWERS, inApp: FOLLOWERS - 1, email: addressed.size - 1, sms: 0 }, 'the counts per channel');
  t.equal((await fanOutParts(sys.pool, eventId)).length, 2, 'told in two parts side by side (STAMPEDE_FANOUT_PARTS)');

  const inbox = async () => (await sys.pool.query<{ recipient_id: string; title: string; body: string }>(
    "SELECT recipient_id, title, body FROM notifications WHERE type = 'auction.created' AND data->>'auctionId' = $1", [auctionId])).rows;
  const rows = await inbox();
  const told = rows.map((r) => r.recipient_id).sort();
  t.same(told, followers.filter((f) => f !== noInApp).sort(), 'exactly one row per follower but the one who switched in_app off, nobody else');
  t.equal(new Set(told).size, told.length, 'none twice');
  t.same(rows[0], {
    recipient_id: rows[0]!.recipient_id, title: `New in ${collection}: Omega Speedmaster 1969`,
    body: `Omega Speedmaster 1969 opens at ${new Date(startsAt).toISOString().replace('T', ' ').slice(0, 16)} UTC, starting price EUR 1,500.00.`,
  }, 'the words');
  const { rows: emails } = await sys.pool.query<{ recipient_id: string }>('SELECT recipient_id FROM notification_emails WHERE event_id = $1', [eventId]);
  t.same(emails.map((e) => e.recipient_id).sort(), [...addressed].filter((b) => b !== noEmail).sort(), 'e-mail only to who has an address and wants it (the in_app opt-out still mailed)');
  const emailQueue = sys.cfg.topology.email.queue;
  await waitFor('the e-mail requests to be queued', async () => (await amqp.depth(emailQueue)) >= addressed.size - 1, 30_000);
  t.equal(await amqp.depth(emailQueue), addressed.size - 1, 'one request per e-mail (nobody consumes them here)');

  // The broker delivers auction.created again (a relay that died before its XACK), as one message and in a batch.
  const again: CloudEvent = {
    specversion: '1.0', id: eventId, source: `stampede:${auctionKeys.outbox(auctionId)}`, type: 'stampede.auction.created.v1', time: new Date().toISOString(), datacontenttype: 'application/json',
    data: { auctionId, collection, title: 'Omega Speedmaster 1969', currency: 'EUR', startPrice: 150_000, startsAt, endsAt: startsAt + 600_000 },
  };
  const ch = await amqp.conn.createConfirmChannel();
  for (const body of [JSON.stringify(again), JSON.stringify([again, again])]) {
    ch.publish(sys.cfg.topology.exchange, routingKeyOf(again.type), Buffer.from(body), { persistent: true, messageId: `${eventId}:again` });
  }
  await ch.waitForConfirms();
  await ch.close();
  // Reloading open auctions (what a scheduler or api start does) writes no event: the outbox holds one auction.created.
  const lastEntry = async () => {
    const info = (await sys.redis.xinfo('STREAM', auctionKeys.outbox(auctionId))) as unknown[];
    return info[info.indexOf('last-generated-id') + 1];
  };
  const before = await lastEntry();
  const { stop } = await sys.startScheduler();
  await stop();
  t.equal(await lastEntry(), before, 'a reload writes nothing in the outbox');
  await amqp.quiet(500, 30_000, [sys.cfg.topology.notifications.queue, ...sys.cfg.topology.retryDelaysMs.map((d) => retryQueue(sys.cfg.topology.notifications, d))]);
  t.equal((await inbox()).length, FOLLOWERS - 1, 'delivered again: no second row');
  t.equal(await amqp.depth(emailQueue), addressed.size - 1, 'and no second e-mail request');
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.notifications)), 0, 'nothing dead-lettered');
  // The scheduler started above keeps dead letters (src/ops/dead-letters.ts): none archived either.
  const archived = await sys.pool.query('SELECT 1 FROM dead_letters WHERE queue = $1 AND archived_at >= $2', [sys.cfg.topology.notifications.queue, testStart]);
  t.equal(archived.rowCount, 0, 'nor archived by the scheduler\'s keeper');

  // Redis lost the auction (a restore older than it): the next load writes the event again, under its id: still one row each.
  await sys.redis.del(auctionKeys.auction(auctionId));
  await sys.pool.query('UPDATE auctions SET announced_at = NULL WHERE id = $1', [auctionId]);
  const { stop: stop2 } = await sys.startScheduler();
  await stop2();
  t.not(await lastEntry(), before, 'the event is written again');
  await waitFor('the relay to publish it', async () => {
    const [group] = (await sys.redis.xinfo('GROUPS', auctionKeys.outbox(auctionId))) as unknown[][];
    const field = (name: string) => group![group!.indexOf(name) + 1];
    return field('pending') === 0 && field('last-delivered-id') === (await lastEntry());
  }, 10_000);
  await amqp.quiet(1000, 30_000, [sys.cfg.topology.notifications.queue]);
  t.equal((await inbox()).length, FOLLOWERS - 1, 'announced again under the same id: no second row');
});
