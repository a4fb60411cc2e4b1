/**
 * The fan-out (src/notifications/fan-out.ts) on the real Postgres: one
 * notification told to listed buyers and to a collection's followers, in
 * chunks, each recipient's preferences applied, once per (event,
 * recipient) however often it is told or resumed; e-mail and SMS requests
 * asked for per chunk, again after a step that died before the broker
 * confirmed them; a large audience split into parts told side by side,
 * finished when its last part is.
 */
import t, { type Test } from 'tap';
import { boot, testRedis, waitFor, type System } from '../helpers/system.js';
import { createLogger } from '../../src/platform/log.js';
import { LivePush, deliveriesOf } from '../../src/notifications/push.js';
import { viewOf } from '../../src/notifications/inbox.js';
import { NOTIFICATIONS_CHANNEL } from '../../src/notifications/keys.js';
import { fanOutParts, inboxPage, type NotificationRecord } from '../../src/notifications/repository.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { randomId } from '../../src/platform/ids.js';
import { savePreferences } from '../../src/notifications/repository.js';
import { FanOut, MAX_LISTED_RECIPIENTS, type Broadcast } from '../../src/notifications/fan-out.js';
import type { CloudEvent } from '../../src/platform/messaging/events.js';
import { retentionOf } from '../../src/notifications/inbox.js';

const broadcastOf = (eventId: string): Broadcast => ({
  eventId, type: 'auction.created', title: 'New in Watches: a Rolex', body: 'A Rolex opens at 2030-01-01 10:00 UTC.', data: { auctionId: 'auc_000000000000' },
});

/** Buyers with an account address each (so e-mail goes unless they switched it off). */
async function addressedBuyers(sys: System, n: number): Promise<string[]> {
  const made = await createBuyers(sys.pool, Array.from({ length: n }, (_, i) => ({ name: `fan ${i}`, email: `fan-${randomId(8)}@example.test` })));
  return made.map((b) => b.id);
}

const noPrefs = { channels: {}, types: {}, email: null, phone: null, timeZone: null, quietStart: null, quietEnd: null };

async function rowsOf(sys: System, table: string, eventId: string): Promise<string[]> {
  const { rows } = await sys.pool.query<{ recipient_id: string }>(`SELECT recipient_id FROM ${table} WHERE event_id = $1 ORDER BY recipient_id`, [eventId]);
  return rows.map((r) => r.recipient_id);
}

/** The event's inbox rows as the inbox reads them. */
async function inboxRowsOf(sys: System, eventId: string): Promise<NotificationRecord[]> {
  const { rows } = await sys.pool.query<{ recipient_id: string }>('SELECT recipient_id FROM notifications WHERE event_id = $1', [eventId]);
  const pages = await Promise.all(rows.map((r) => inboxPage(sys.pool, r.recipient_id, 10, undefined, new Date(0))));
  return pages.flat().filter((n) => n.eventId === eventId);
}

/** A fan-out id for this test, its rows deleted at teardown: a later test's worker would resume one left unfinished. */
function eventIdFor(t: Test, sys: System): string {
  const eventId = `test:${randomId(8)}`;
  t.teardown(async () => void await sys.pool.query('DELETE FROM notification_fanouts WHERE event_id = $1', [eventId]));
  return eventId;
}

const requested = (sent: CloudEvent[], type: string) => [...new Set(sent.filter((e) => e.type === type).map((e) => (e.data as { recipientId: string }).recipientId))].sort();

t.test('{ buyerIds }: each listed buyer told once, as they want it; told again, nothing new', async (t) => {
  const sys = await boot(t, { api: false });
  const fanOut = new FanOut(sys.pool, { chunkSize: 3, retention: retentionOf(sys.cfg) });
  const [plain, noInApp, noEmail, texted, stranger, ...rest] = await addressedBuyers(sys, 9);
  await savePreferences(sys.pool, { ...noPrefs, buyerId: noInApp!, types: { 'auction.created': { in_app: false } } });
  await savePreferences(sys.pool, { ...noPrefs, buyerId: noEmail!, channels: { email: false } });
  await savePreferences(sys.pool, { ...noPrefs, buyerId: texted!, phone: '+15005550001', types: { 'auction.created': { sms: true } } });
  const listed = [plain!, noInApp!, noEmail!, texted!, ...rest, plain!, 'usr_000000000000'];
  const sent: CloudEvent[] = [];
  const publish = async (events: CloudEvent[]) => void sent.push(...events);
  const eventId = eventIdFor(t, sys);

  const progress = await fanOut.tell(broadcastOf(eventId), { buyerIds: listed }, publish);
  const addressed = [plain!, noInApp!, texted!, ...rest].sort();
  t.same(await rowsOf(sys, 'notifications', eventId), [plain!, noEmail!, texted!, ...rest, 'usr_000000000000'].sort(), 'in the inbox: every listed buyer but the one who switched it off, once');
  t.same(await rowsOf(sys, 'notification_emails', eventId), addressed, 'e-mail: only who has an address and wants it');
  t.same(await rowsOf(sys, 'notification_sms', eventId), [texted!], 'SMS: only who has a phone and switched it on');
  t.notOk((await rowsOf(sys, 'notifications', eventId)).includes(stranger!), 'nobody who was not listed');
  t.match(progress, { eventId, finished: true, recipients: 9, inApp: 8, email: 7, sms: 1 }, 'the counts per channel');
  t.same(requested(sent, 'stampede.notification.email.v1'), addressed, 'every e-mail asked for');
  t.same(requested(sent, 'stampede.notification.sms.v1'), [texted!], 'the SMS asked for');

  sent.length = 0;
  const again = await fanOut.tell(broadcastOf(eventId), { buyerIds: listed }, publish);
  t.match(again, { recipients: 9, inApp: 8, email: 7, sms: 1 }, 'told again: the same counts');
  t.equal((await rowsOf(sys, 'notifications', eventId)).length, 9 - 1, 'no second row');
  t.same(sent, [], 'nothing asked for again');
  await t.rejects(fanOut.record(broadcastOf('too-many'), { buyerIds: Array.from({ length: MAX_LISTED_RECIPIENTS + 1 }, (_, i) => `usr_${String(i).padStart(12, '0')}`) }),
    { code: 'VALIDATION_FAILED' }, 'a longer list is refused');
});

t.test('{ collection }: followers only, chunk by chunk; a step that dies before its requests are confirmed is resumed, none twice', async (t) => {
  const sys = await boot(t, { api: false });
  const fanOut = new FanOut(sys.pool, { chunkSize: 4, retention: retentionOf(sys.cfg) });
  const collection = `Watches ${randomId(6)}`;
  const followers = (await addressedBuyers(sys, 17)).sort();
  const others = await addressedBuyers(sys, 3);
  await sys.pool.query('INSERT INTO buyer_interests (buyer_id, collection) SELECT unnest($1::text[]), $2', [followers, collection]);
  await sys.pool.query('INSERT INTO buyer_interests (buyer_id, collection) SELECT unnest($1::text[]), $2', [others, `${collection} (other)`]);
  const eventId = eventIdFor(t, sys);
  await fanOut.record(broadcastOf(eventId), { collection });

  const sent: CloudEvent[] = [];
  const publish = async (events: CloudEvent[]) => void sent.push(...events);
  const first = await fanOut.step(eventId, publish);
  t.match(first, { told: { recipients: 4, inApp: 4, email: 4, sms: 0 }, toldThrough: followers[3], finished: false }, 'one chunk per step');
  t.same(await rowsOf(sys, 'notifications', eventId), followers.slice(0, 4), 'the first chunk, in buyer id order');

  // The broker goes away after the second chunk's commit: its e-mails are recorded but not asked for.
  await t.rejects(fanOut.step(eventId, async () => { throw new Error('broker gone'); }));
  t.match(await fanOut.progress(eventId), { recipients: 8, inApp: 8, email: 8, finished: false }, 'the second chunk is committed');
  t.same(requested(sent, 'stampede.notification.email.v1'), followers.slice(0, 4), 'its requests were not confirmed');

  // Two steppers side by side (a redelivered step beside the next one): they share the rest, none twice.
  const runner = new FanOut(sys.pool, { chunkSize: 4, retention: retentionOf(sys.cfg) });
  const [a, b] = await Promise.all([fanOut.finish(eventId, publish), runner.finish(eventId, publish)]);
  t.match(a, { recipients: 17, inApp: 17, email: 17, sms: 0, finished: true });
  t.same(b, a, 'both see one finished fan-out');
  t.same(await rowsOf(sys, 'notifications', eventId), followers, 'every follower once, and no one else');
  t.same(await rowsOf(sys, 'notification_emails', eventId), followers, 'one e-mail each');
  t.same(requested(sent, 'stampede.notification.email.v1'), followers, "every e-mail asked for, the died step's too");
  t.same((await fanOut.step(eventId, publish)), { told: { recipients: 0, inApp: 0, email: 0, sms: 0 }, toldThrough: followers[16], finished: true }, 'a step after the end tells nothing');
  t.same(await fanOut.unfinished(), [], 'nothing left unfinished');
});

t.test('parts: a large audience split in buyer order, each part stepped alone and all side by side; finished with the last part; a small one is not split', async (t) => {
  const sys = await boot(t, { api: false });
  const settings = { chunkSize: 3, parts: 3, retention: retentionOf(sys.cfg) };
  const fanOut = new FanOut(sys.pool, settings);
  const collection = `Watches ${randomId(6)}`;
  const followers = (await addressedBuyers(sys, 20)).sort();
  await sys.pool.query('INSERT INTO buyer_interests (buyer_id, collection) SELECT unnest($1::text[]), $2', [followers, collection]);
  const eventId = eventIdFor(t, sys);
  await fanOut.record(broadcastOf(eventId), { collection });
  const parts = await fanOutParts(sys.pool, eventId);
  t.same(parts.map((p) => [p.part, p.toldThrough, p.lastId]), [[0, '', followers[6]], [1, followers[6], followers[13]], [2, followers[13], null]],
    'three parts of 7, 7 and 6 buyers, each starting after the last one ends');
  t.same((await fanOut.stepsOf(eventId)).map((s) => s.id), [0, 1, 2].map((p) => `${eventId}:fanout:${p}:${parts[p]!.toldThrough}`), 'a first step for each part');

  const sent: CloudEvent[] = [];
  const publish = async (events: CloudEvent[]) => void sent.push(...events);
  // The last part alone, to its end: it tells its own buyers only, and the fan-out is not finished.
  for (let outcome = await fanOut.step(eventId, publish, 2); typeof outcome === 'string' || !outcome.finished; outcome = await fanOut.step(eventId, publish, 2));
  t.same(await rowsOf(sys, 'notifications', eventId), followers.slice(14), 'the last part: its six buyers');
  t.match(await fanOut.progress(eventId), { recipients: 6, inApp: 6, email: 6, finished: false }, 'not finished while two parts are left');
  t.same((await fanOut.stepsOf(eventId)).map((s) => (s.data as { part: number }).part), [0, 1], 'only the unfinished parts are asked for');
  t.match(await fanOut.step(eventId, publish, 0), { told: { recipients: 3 }, toldThrough: followers[2], finished: false });
  t.equal(await fanOut.step(eventId, publish, 9), 'unknown', 'a part it does not have');

  // Two runners side by side over what is left: every follower once.
  const [a, b] = await Promise.all([fanOut.finish(eventId, publish), new FanOut(sys.pool, settings).finish(eventId, publish)]);
  t.match(a, { recipients: 20, inApp: 20, email: 20, sms: 0, finished: true }, 'the counts of all parts');
  t.same(b, a);
  t.same(await rowsOf(sys, 'notifications', eventId), followers, 'every follower once, and no one else');
  t.same(requested(sent, 'stampede.notification.email.v1'), followers, 'every e-mail asked for');
  t.same(await fanOut.stepsOf(eventId), [], 'no step left');
  t.notOk((await fanOut.unfinished()).includes(eventId));

  const [small, smaller] = [eventIdFor(t, sys), eventIdFor(t, sys)];
  await fanOut.record(broadcastOf(small), { buyerIds: followers.slice(0, 8) });
  t.same((await fanOut.stepsOf(small)).map((s) => (s.data as { part: number }).part), [0, 1], 'eight listed buyers: two parts of at least a chunk');
  await fanOut.record(broadcastOf(smaller), { buyerIds: followers.slice(0, 5) });
  t.equal((await fanOutParts(sys.pool, smaller)).length, 1, 'five: one part');
});

t.test('the live push: one message per chunk naming each new row once, chunk after chunk, the item the inbox shows; none when told again', async (t) => {
  const sys = await boot(t, { api: false });
  const log = createLogger('warn', 'test');
  const fanOut = new FanOut(sys.pool, { chunkSize: 4, retention: retentionOf(sys.cfg) }, new LivePush(sys.redis, log));
  const buyers = await addressedBuyers(sys, 11);
  const ours = new Set(buyers);
  const heard: string[] = [];
  let messages = 0;
  const subscriber = testRedis(t, 'test-fan-out-push');
  subscriber.on('message', (channel: string, message: string) => {
    if (channel !== NOTIFICATIONS_CHANNEL) return;
    const deliveries = (deliveriesOf(message) ?? []).filter((d) => ours.has(d.buyerId));
    if (deliveries.length > 0) messages++;
    for (const d of deliveries) heard.push(`${d.buyerId} ${d.itemJson}`);
  });
  await subscriber.subscribe(NOTIFICATIONS_CHANNEL);
  const eventId = eventIdFor(t, sys);
  const publish = async () => {};
  await fanOut.tell(broadcastOf(eventId), { buyerIds: buyers }, publish);
  await waitFor('every push', async () => heard.length >= buyers.length);
  const rows = await inboxRowsOf(sys, eventId);
  t.same([...heard].sort(), rows.map((r) => `${r.recipientId} ${JSON.stringify(viewOf(r))}`).sort(), 'each new row once, as the inbox shows it');
  t.equal(messages, Math.ceil(buyers.length / 4), 'one message per chunk');
  await fanOut.tell(broadcastOf(eventId), { buyerIds: buyers }, publish);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(heard.length, buyers.length, 'told again: nothing pushed');
});
