/**
 * The SMS channel on the real services and a real HTTP receiver standing in
 * for a Twilio-compatible provider: a buyer with a phone who switched SMS on
 * for a type gets one SMS per (event, recipient) however often the
 * announcement comes (a form POST: To, From, Body, HTTP Basic credentials),
 * and nobody else gets one. A provider that is down (connections refused,
 * 429, 5xx, no answer in time) delays the SMS through the SMS queue's retry
 * tiers while the inbox and the e-mail are told at once; one that refuses
 * a message for good (400) dead-letters it at once with its reason.
 */
import t from 'tap';
import type { Test } from 'tap';
import { boot, waitFor, type System } from '../helpers/system.js';
import { openAmqp, type Amqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, buyerWithPreferences, inboxRows, publishAnnouncements, waitInbox } from '../helpers/notifications.js';
import { smsReceiver, type SmsReceiver } from '../helpers/sms.js';
import { smtpCatcher, type SmtpCatcher } from '../helpers/smtp.js';
import { newBidId } from '../../src/platform/ids.js';
import { deadLetterQueue, retryQueue } from '../../src/platform/messaging/topology.js';

async function system(t: Test, env: NodeJS.ProcessEnv = {}): Promise<{ sys: System; amqp: Amqp; provider: SmsReceiver; smtp: SmtpCatcher }> {
  const [provider, smtp] = [await smsReceiver(t), await smtpCatcher(t)];
  const sys = await boot(t, {
    worker: true,
    env: {
      STAMPEDE_WORKER_QUEUES: 'notifications,email,sms', STAMPEDE_SMS_URL: provider.url, STAMPEDE_SMS_FROM: '+15005550006',
      STAMPEDE_SMS_TIMEOUT_MS: '500', STAMPEDE_SMTP_URL: smtp.url, STAMPEDE_SMTP_TIMEOUT_MS: '2000', ...env,
    },
  });
  return { sys, amqp: await openAmqp(t, sys.cfg), provider, smtp };
}

const channelQueues = (sys: System) => [sys.cfg.topology.notifications, sys.cfg.topology.email, sys.cfg.topology.sms]
  .flatMap((c) => [c.queue, ...sys.cfg.topology.retryDelaysMs.map((d) => retryQueue(c, d))]);

let phones = 0;
const newPhone = () => `+3361${String(process.pid % 10_000).padStart(4, '0')}${String(++phones).padStart(3, '0')}`;

const buyer = async (sys: System, preferences: Record<string, unknown>) => (await buyerWithPreferences(sys, preferences)).id;

const released = (auctionId: string, buyerId: string) => announcement('released', `${auctionId}:released:${buyerId}`, { auctionId, buyerId, cancelledAt: Date.now() });

t.test('one SMS per (event, recipient) across redeliveries, as a form POST; only to a buyer with a phone who wants SMS for the type', async (t) => {
  const { sys, amqp, provider, smtp } = await system(t);
  const phone = newPhone();
  const x = await buyer(sys, { phone, types: { 'auction.won': { sms: true } } });
  const noPhone = await buyer(sys, { types: { 'auction.won': { sms: true } } });
  const smsOff = await buyer(sys, { phone: newPhone() });
  const channelOff = await buyer(sys, { phone: newPhone(), channels: { sms: false }, types: { 'auction.won': { sms: true } } });
  const a = await createAuction(sys.pool, sys.redis);
  const won = (b: string) => announcement('won', `${a.id}:won:${b}`, { auctionId: a.id, buyerId: b, bidId: newBidId(a.id), currency: 'EUR', price: 2100, paid: 2100, bonus: 0 });
  const outbid = announcement('outbid', `${newBidId(a.id)}:outbid`, { auctionId: a.id, buyerId: x, price: 1500, byBid: newBidId(a.id) });
  const all = [won(x), outbid, won(noPhone), won(smsOff), won(channelOff)];
  for (let i = 0; i < 3; i++) await publishAnnouncements(amqp, sys.cfg.topology.exchange, all);
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, all, true);
  await waitFor('the SMS', async () => provider.sent.length >= 1);
  await waitFor('the mails', async () => smtp.mails.length >= 5);
  await amqp.quiet(800, 30_000, channelQueues(sys));

  t.equal(provider.requests.length, 1, 'one SMS for four deliveries of five announcements: the won one, to the buyer with a phone who wants it');
  const [sms] = provider.sent;
  t.equal(sms!.method, 'POST');
  t.equal(sms!.path, '/2010-04-01/Accounts/ACtest/Messages.json', 'to the URL configured');
  t.equal(sms!.contentType, 'application/x-www-form-urlencoded', 'a form, as Twilio takes it');
  t.equal(sms!.authorization, `Basic ${Buffer.from('ACtest:secret').toString('base64')}`, "the URL's credentials as HTTP Basic auth");
  t.same(sms!.fields, { To: phone, From: '+15005550006', Body: 'You won Test lot. You paid EUR 21.00.' }, 'To, From, Body');
  t.equal(smtp.mails.length, 5, 'every buyer still got their e-mails (outbid and won)');
  t.equal((await inboxRows(sys.pool, [x, noPhone, smsOff, channelOff])).length, 5, 'and their inbox rows');
  const { rows } = await sys.pool.query<{ recipient_id: string; sent: boolean }>('SELECT recipient_id, sent_at IS NOT NULL AS sent FROM notification_sms WHERE recipient_id = ANY($1)', [[x, noPhone, smsOff, channelOff]]);
  t.same(rows, [{ recipient_id: x, sent: true }], 'one SMS row, recorded sent');
});

t.test('provider down (refusing connections, 429, 503, no answer in time), then back: retried through the tiers, sent once; inbox and e-mail at once', async (t) => {
  // Tiers enough for every way of being down in turn.
  const { sys, amqp, provider, smtp } = await system(t, { STAMPEDE_RETRY_DELAYS_MS: Array(12).fill(300).join(',') });
  const phone = newPhone();
  const x = await buyer(sys, { phone, types: { 'auction.released': { sms: true } } });
  const a = await createAuction(sys.pool, sys.redis);
  await provider.stop();
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [released(a.id, x)]);
  await waitInbox(sys.pool, [x], 1);
  await waitFor('the mail', async () => smtp.mails.length === 1);
  t.pass('told in the inbox and by e-mail while the SMS provider is down');
  await new Promise((r) => setTimeout(r, 700));
  t.equal(provider.requests.length, 0, 'nothing reached the provider while it was down');
  t.equal((await sys.pool.query('SELECT 1 FROM notification_sms WHERE recipient_id = $1 AND sent_at IS NULL', [x])).rowCount, 1, 'the SMS is recorded, unsent');
  await provider.start();
  // Then it answers 429, 503, and too late; after that it takes the SMS.
  provider.answerWith = { status: 429, body: 'slow down' };
  await waitFor('a 429', async () => provider.requests.length >= 1);
  provider.answerWith = { status: 503, body: 'maintenance' };
  await waitFor('a 503', async () => provider.requests.some((r) => r.status === 503));
  provider.answerWith = undefined;
  provider.delayMs = 1_500;
  await waitFor('an answer too late', async () => provider.requests.length >= 3);
  await new Promise((r) => setTimeout(r, 600));
  provider.delayMs = undefined;
  await waitFor('the SMS', async () => provider.sent.length >= 1);
  await amqp.quiet(800, 30_000, channelQueues(sys));
  t.equal(provider.sent.length, 1, 'sent once the provider was back');
  t.same(provider.requests.slice(0, 3).map((r) => r.status), [429, 503, 0], 'after a 429, a 503 and an answer the worker did not wait for');
  t.equal(provider.sent[0]!.fields.To, phone);
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.sms)), 0, 'nothing dead-lettered');
  t.equal(smtp.mails.length, 1, 'the e-mail was not sent again');
});

t.test('a permanent refusal (400): dead-lettered at once with the reason, not retried; other channels untouched', async (t) => {
  const { sys, amqp, provider, smtp } = await system(t);
  const x = await buyer(sys, { phone: newPhone(), types: { 'auction.released': { sms: true } } });
  const a = await createAuction(sys.pool, sys.redis);
  provider.answerWith = { status: 400, body: '{"code":21211,"message":"The To number is not a valid phone number."}' };
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [released(a.id, x)]);
  const [refused] = await amqp.take(deadLetterQueue(sys.cfg.topology.sms), 1, 20_000);
  t.match(String(refused!.properties.headers?.['x-stampede-last-error']), /refused the message for good: 400 .*not a valid phone number/, 'the reason quotes the provider');
  amqp.ch.ack(refused!);
  await amqp.quiet(800, 30_000, channelQueues(sys));
  t.equal(provider.requests.length, 1, 'not retried');
  t.equal(smtp.mails.length, 1, 'the e-mail went out');
  t.equal((await inboxRows(sys.pool, [x])).length, 1, 'the inbox row is there');
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.email)), 0);
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.notifications)), 0);
});
