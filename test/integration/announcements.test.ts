/**
 * Operators' announcements and sales' opening notices on the real services
 * (api, relay, worker, scheduler; a real SMTP server): an announcement now
 * reaches exactly its audience (listed buyers, or a collection's followers)
 * on the channels it names; a scheduled one goes at its time, not before,
 * once, across a scheduler restart that found the due index gone; a
 * cancelled one never goes; the progress counts match what was delivered;
 * a sale's opening notice reaches its watchers only, once.
 */
import t from 'tap';
import type { ParsedMail } from 'mailparser';
import { boot, call, OPERATOR_KEY, sleep, waitFor, type HttpAnswer, type System } from '../helpers/system.js';
import { inboxRows } from '../helpers/notifications.js';
import { smtpCatcher, type SmtpCatcher } from '../helpers/smtp.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { randomId } from '../../src/platform/ids.js';
import { NOTIFICATION_SENDS_DUE } from '../../src/notifications/keys.js';
import { saleOpeningId } from '../../src/notifications/sends.js';

const smtp: SmtpCatcher = await smtpCatcher(t);
const sys: System = await boot(t, {
  relay: true,
  worker: true,
  env: { STAMPEDE_WORKER_QUEUES: 'notifications,email', STAMPEDE_SMTP_URL: smtp.url, STAMPEDE_SALE_OPENING_NOTICE_MINUTES: '1' },
});
let scheduler = await sys.startScheduler();

const announce = (body: unknown): Promise<HttpAnswer> => sys.operator('/v1/ops/notifications', { method: 'POST', body: JSON.stringify(body) });
const statusOf = async (id: string) => (await sys.operator(`/v1/ops/notifications/${id}`)).body;
const sent = (id: string) => waitFor(`${id} sent`, async () => {
  const s = await statusOf(id);
  return s.status === 'sent' ? s : undefined;
});

async function buyers(n: number): Promise<{ id: string; email: string }[]> {
  const made = await createBuyers(sys.pool, Array.from({ length: n }, (_, i) => ({ name: `ann ${i}`, email: `ann-${randomId(10)}@example.test` })));
  return made.map((b, i) => ({ id: b.id, email: made[i]!.email! }));
}

const mailsTo = (address: string): ParsedMail[] =>
  smtp.mails.filter((m) => (Array.isArray(m.to) ? m.to : [m.to]).some((a) => a?.value.some((v) => v.address === address)));

const toldOf = async (eventId: string) => (await sys.pool.query<{ recipient_id: string }>(
  'SELECT recipient_id FROM notifications WHERE event_id = $1 ORDER BY recipient_id', [eventId],
)).rows.map((r) => r.recipient_id);

t.test('now, to listed buyers, on in_app and e-mail: exactly those inboxes and mailboxes; the progress counts match', async (t) => {
  const [a, b, outsider] = await buyers(3);
  const posted = await announce({ audience: { buyerIds: [a!.id, b!.id] }, title: 'Doors open early', body: 'The spring drop opens an hour early.', channels: ['in_app', 'email'] });
  t.equal(posted.status, 202);
  t.match(posted.body, { id: /^ann_[0-9a-z]{12}$/, type: 'announcement', status: 'scheduled', channels: ['in_app', 'email'], audience: { buyerIds: [a!.id, b!.id] } });
  await sent(posted.body.id);
  await waitFor('two mails', async () => mailsTo(a!.email).length + mailsTo(b!.email).length >= 2);
  t.same(await toldOf(posted.body.id), [a!.id, b!.id].sort(), 'in the two inboxes named, no other');
  const [row] = await inboxRows(sys.pool, [a!.id]);
  t.match(row, { type: 'announcement', title: 'Doors open early', body: 'The spring drop opens an hour early.', data: { announcementId: posted.body.id } });
  t.equal(mailsTo(a!.email).length, 1);
  t.equal(mailsTo(b!.email)[0]?.subject, 'Doors open early', 'mailed, the title the subject');
  t.equal(mailsTo(outsider!.email).length, 0, 'the outsider got no mail');
  t.same(await inboxRows(sys.pool, [outsider!.id]), [], 'nor an inbox row');
  const progress = await waitFor('both mails recorded sent', async () => {
    const s = await statusOf(posted.body.id);
    return s.progress.email.sent === 2 ? s : undefined;
  });
  t.same(progress.progress, { recipients: 2, inApp: 2, email: { recorded: 2, sent: 2 }, sms: { recorded: 0, sent: 0 } }, 'recipients, inbox rows, e-mails recorded and sent');
  t.ok(Date.parse(progress.sentAt) >= Date.parse(progress.startedAt), 'started, then sent');
});

t.test('now, to a collection: its followers only, on in_app alone unless channels are named; an opt-out holds', async (t) => {
  const collection = `Watches ${randomId(6)}`;
  const [f1, f2, optedOut, other] = await buyers(4);
  await sys.pool.query('INSERT INTO buyer_interests (buyer_id, collection) SELECT unnest($1::text[]), $2', [[f1!.id, f2!.id, optedOut!.id], collection]);
  await sys.pool.query("INSERT INTO buyer_interests (buyer_id, collection) VALUES ($1, 'Something else')", [other!.id]);
  await call(`${sys.url}/v1/notification-preferences`, {
    method: 'PUT', headers: { authorization: `Bearer ${sys.token(optedOut!.id)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ types: { announcement: { in_app: false } } }),
  });
  const posted = await announce({ audience: { collection }, title: 'New in Watches', body: 'Twelve lots added.' });
  t.equal(posted.status, 202);
  t.same(posted.body.channels, ['in_app'], "the type's default channels");
  const done = await sent(posted.body.id);
  t.same(await toldOf(posted.body.id), [f1!.id, f2!.id].sort(), 'the followers who want it, nobody else');
  t.same(done.progress, { recipients: 3, inApp: 2, email: { recorded: 0, sent: 0 }, sms: { recorded: 0, sent: 0 } }, 'three followers reached, two told, no e-mail');
  await sleep(300);
  t.equal([f1, f2, optedOut, other].reduce((n, b) => n + mailsTo(b!.email).length, 0), 0, 'no mail: in_app only');
});

t.test('scheduled: sent at its time, not before, once, across a scheduler restart that lost the due index; a cancelled one never', async (t) => {
  const [x, y] = await buyers(2);
  const sendAt = new Date(Date.now() + 2_500).toISOString();
  const kept = await announce({ audience: { buyerIds: [x!.id] }, title: 'Later', body: 'Sent at its time.', sendAt });
  const dropped = await announce({ audience: { buyerIds: [y!.id] }, title: 'Never', body: 'Cancelled before its time.', sendAt });
  t.equal(kept.status, 202);
  t.equal(kept.body.sendAt, sendAt);
  t.equal((await sys.operator(`/v1/ops/notifications/${dropped.body.id}`, { method: 'DELETE' })).status, 204, 'cancelled');
  t.equal(await sys.redis.zscore(NOTIFICATION_SENDS_DUE, dropped.body.id), null, 'and out of the due index');

  await sleep(800);
  t.equal((await statusOf(kept.body.id)).status, 'scheduled', 'not before its time');
  t.same(await toldOf(kept.body.id), []);
  // The scheduler goes away and its index with it: the new one rebuilds it from Postgres.
  await scheduler.stop();
  await sys.redis.del(NOTIFICATION_SENDS_DUE);
  scheduler = await sys.startScheduler();
  t.ok(await sys.redis.zscore(NOTIFICATION_SENDS_DUE, kept.body.id), 'the new scheduler indexed it again');
  t.equal(await sys.redis.zscore(NOTIFICATION_SENDS_DUE, dropped.body.id), null, 'not the cancelled one');

  const done = await sent(kept.body.id);
  t.ok(Date.parse(done.startedAt) >= Date.parse(sendAt), `started ${done.startedAt}, not before ${sendAt}`);
  t.same(await toldOf(kept.body.id), [x!.id], 'told once');
  await sleep(1_000);
  t.same(await toldOf(dropped.body.id), [], 'the cancelled one never went');
  t.equal((await statusOf(dropped.body.id)).status, 'cancelled');
  const problem = await sys.operator(`/v1/ops/notifications/${kept.body.id}`, { method: 'DELETE' });
  t.equal(problem.status, 409, 'a sent one cannot be cancelled');
  t.equal(problem.body.notificationStatus, 'sent');
});

t.test("a sale's opening notice: to its watchers only, N minutes before it opens, once; a sale opening sooner gets none", async (t) => {
  const [w1, w2, stranger] = await buyers(3);
  const startsAt = new Date(Date.now() + 60_000 + 2_500);
  const created = await sys.operator('/v1/sales', {
    method: 'POST',
    body: JSON.stringify({ name: 'Spring drop', sku: 'SPRING-1', unitPrice: 1000, currency: 'EUR', stock: 10, perBuyerLimit: 1,
      startsAt: startsAt.toISOString(), endsAt: new Date(startsAt.getTime() + 3600_000).toISOString() }),
  });
  t.equal(created.status, 201);
  const noticeId = saleOpeningId(created.body.id);
  const scheduled = await statusOf(noticeId);
  t.match(scheduled, { type: 'sale.opening', status: 'scheduled', audience: { saleId: created.body.id }, channels: ['in_app', 'email', 'sms'] });
  t.equal(Date.parse(scheduled.sendAt), startsAt.getTime() - 60_000, 'due one minute (the setting) before the start');
  await sys.pool.query('INSERT INTO sale_watches (sale_id, buyer_id) SELECT $1, unnest($2::text[])', [created.body.id, [w1!.id, w2!.id]]);

  const done = await sent(noticeId);
  t.same(await toldOf(noticeId), [w1!.id, w2!.id].sort(), 'the watchers, nobody else');
  t.same(await inboxRows(sys.pool, [stranger!.id]), []);
  const [row] = await inboxRows(sys.pool, [w1!.id]);
  t.match(row, { type: 'sale.opening', title: 'Spring drop opens in 1 minute', data: { saleId: created.body.id, startsAt: startsAt.getTime() } });
  await waitFor('the watchers mailed', async () => mailsTo(w1!.email).length + mailsTo(w2!.email).length >= 2);
  t.equal(done.progress.recipients, 2);

  // Told again (a repeat of its due event, the sale created again under its id): nothing new.
  await sys.redis.zadd(NOTIFICATION_SENDS_DUE, Date.now() - 1000, noticeId);
  await waitFor('the repeat claimed', async () => (await sys.redis.zscore(NOTIFICATION_SENDS_DUE, noticeId)) === null);
  await sleep(1_000);
  t.same(await toldOf(noticeId), [w1!.id, w2!.id].sort(), 'still once each');
  t.equal(mailsTo(w1!.email).length, 1, 'one mail');
  t.equal(mailsTo(stranger!.email).length, 0);

  const soon = await sys.operator('/v1/sales', {
    method: 'POST',
    body: JSON.stringify({ name: 'Flash', sku: 'FLASH-1', unitPrice: 1000, currency: 'EUR', stock: 10, perBuyerLimit: 1,
      startsAt: new Date(Date.now() + 30_000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString() }),
  });
  t.equal(soon.status, 201);
  t.equal((await sys.operator(`/v1/ops/notifications/${saleOpeningId(soon.body.id)}`)).status, 404, 'opening within the notice period: no notice');
});

t.teardown(() => scheduler.stop());

