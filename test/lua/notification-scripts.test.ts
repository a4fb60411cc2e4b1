/**
 * The notification script against a real Redis: claimDueSends claims only
 * what is due by Redis TIME, appends one catalogue event per claimed send to
 * the outbox in the same call, and never lets two callers claim one send.
 */
import t from 'tap';
import { claimDueSends } from '../../src/notifications/scripts.js';
import { NOTIFICATION_SENDS_DUE, NOTIFICATIONS_OUTBOX } from '../../src/notifications/keys.js';
import { EVENTS } from '../../src/events/catalogue.js';
import { compileSchema } from '../../src/platform/http/validate.js';
import { outboxEntryOf } from '../../src/platform/messaging/events.js';
import { randomId } from '../../src/platform/ids.js';
import { testRedis } from '../helpers/system.js';

const redis = testRedis(t, 'lua-notification-test');
const dueData = compileSchema(EVENTS.notificationDue.schema);
const sendId = () => `ann_${randomId(12)}`;

async function outbox() {
  const entries = (await redis.xrange(NOTIFICATIONS_OUTBOX, '-', '+')) as [string, string[]][];
  return entries.map(([id, fields]) => outboxEntryOf(NOTIFICATIONS_OUTBOX, id, fields));
}

t.beforeEach(async () => {
  await redis.del(NOTIFICATION_SENDS_DUE, NOTIFICATIONS_OUTBOX);
});

t.test('claims the due sends, earliest first, each with its due event; leaves the rest', async (t) => {
  const [now] = (await redis.time()).map(Number);
  const nowMs = now! * 1000;
  const [early, late, future] = [sendId(), sendId(), sendId()];
  await redis.zadd(NOTIFICATION_SENDS_DUE, nowMs - 2000, late, nowMs - 5000, early, nowMs + 60_000, future);
  t.same(await claimDueSends(redis, 10), [early, late], 'the two due, earliest first');
  t.same(await redis.zrange(NOTIFICATION_SENDS_DUE, 0, -1), [future], 'the one not due stays in the index');
  const events = await outbox();
  t.same(events.map((e) => [e.type, e.id, e.subject]), [[EVENTS.notificationDue.type, `${early}:due`, early], [EVENTS.notificationDue.type, `${late}:due`, late]]);
  for (const e of events) {
    const data = JSON.parse(e.data);
    t.ok(dueData(data), `${e.id}: its data matches the catalogue`);
    t.ok(e.time >= nowMs, 'stamped with Redis TIME');
  }
  t.same(await claimDueSends(redis, 10), [], 'claiming again claims nothing');
  t.equal((await outbox()).length, 2, 'and appends nothing');
});

t.test('claims at most ARGV[1] per call', async (t) => {
  const ids = Array.from({ length: 5 }, sendId);
  await redis.zadd(NOTIFICATION_SENDS_DUE, ...ids.flatMap((id, i) => [1000 + i, id]));
  t.same(await claimDueSends(redis, 3), ids.slice(0, 3));
  t.same(await claimDueSends(redis, 3), ids.slice(3));
  t.equal((await outbox()).length, 5);
});

t.test('many callers at once: each due send is claimed once, with one event', async (t) => {
  const ids = Array.from({ length: 300 }, sendId);
  await redis.zadd(NOTIFICATION_SENDS_DUE, ...ids.flatMap((id) => [1000, id]));
  const claims = await Promise.all(Array.from({ length: 20 }, () => claimDueSends(redis, 7)));
  const again = [];
  for (let more = await claimDueSends(redis, 1000); more.length > 0; more = await claimDueSends(redis, 1000)) again.push(...more);
  const all = [...claims.flat(), ...again];
  t.equal(all.length, 300, 'every send claimed');
  t.equal(new Set(all).size, 300, 'none twice');
  t.equal((await outbox()).length, 300, 'one event each');
});
