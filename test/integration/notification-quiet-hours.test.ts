/**
 * Quiet hours on the real services, a real SMTP server and a real SMS
 * receiver: a buyer told something inside their quiet hours (read in their
 * time zone) finds it in the inbox at once, and gets its e-mail and SMS when
 * the quiet hours end, once each; a buyer outside theirs gets both at once.
 * The workers are the real ones, built here so that their wall clock can be
 * shifted: "now" sits a few seconds before the end of a local minute, and
 * the quiet window is that minute.
 */
import t from 'tap';
import { boot, sleep, waitFor } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, buyerWithPreferences, publishAnnouncements, waitInbox } from '../helpers/notifications.js';
import { smsReceiver } from '../helpers/sms.js';
import { smtpCatcher } from '../helpers/smtp.js';
import { createLogger } from '../../src/platform/log.js';
import { retryQueue } from '../../src/platform/messaging/topology.js';
import { LivePush } from '../../src/notifications/push.js';
import { NotificationsWorker } from '../../src/notifications/worker.js';
import { ChannelWorker } from '../../src/notifications/channel-worker.js';
import { Emails } from '../../src/notifications/emails.js';
import { TextMessages } from '../../src/notifications/sms.js';
import { SmtpChannel } from '../../src/notifications/channels/email.js';
import { SmsChannel } from '../../src/notifications/channels/sms.js';
import { unsubscribeLinksOf } from '../../src/notifications/unsubscribe.js';
import { tellSettingsOf } from '../../src/notifications/notifications.js';
import { localMinutesOf } from '../../src/notifications/quiet-hours.js';

const MINUTE_MS = 60_000;
/** How long before the end of its minute the shifted clock starts. */
const QUIET_MS = 6_000;

const hhmm = (minutes: number) => `${String(Math.floor(minutes / 60) % 24).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

t.test('inside quiet hours: in the inbox at once, e-mail and SMS when they end (once each); outside: at once', async (t) => {
  const [provider, smtp] = [await smsReceiver(t), await smtpCatcher(t)];
  const sys = await boot(t, {});
  const amqp = await openAmqp(t, sys.cfg);
  const cfg = sys.cfg;
  // The shifted clock: QUIET_MS before the end of a minute.
  const skew = (MINUTE_MS - QUIET_MS - (Date.now() % MINUTE_MS) + MINUTE_MS) % MINUTE_MS;
  const clock = () => Date.now() + skew;
  const common = {
    amqpUrl: cfg.STAMPEDE_AMQP_URL, log: createLogger('silent', 'test'), prefetch: cfg.STAMPEDE_WORKER_PREFETCH, batch: cfg.STAMPEDE_WORKER_BATCH,
    concurrency: 2, topology: cfg.topology, clock,
  };
  const smtpChannel = new SmtpChannel({ url: smtp.url, from: cfg.STAMPEDE_MAIL_FROM, timeoutMs: 2_000 });
  const workers = [
    new NotificationsWorker({ ...common, pool: sys.pool, tell: { ...tellSettingsOf(cfg), clock }, push: new LivePush(sys.redis, common.log) }),
    new ChannelWorker({ ...common, delivery: 'email', sender: new Emails(sys.pool, smtpChannel, unsubscribeLinksOf(cfg)) }),
    new ChannelWorker({ ...common, delivery: 'sms', sender: new TextMessages(sys.pool, new SmsChannel({ url: provider.url, from: '+15005550006', timeoutMs: 2_000 })) }),
  ];
  for (const w of workers) w.start();
  t.teardown(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    smtpChannel.close();
  });

  const timeZone = 'Asia/Kathmandu';
  const minute = Math.floor(localMinutesOf(clock(), timeZone));
  const sms = { 'auction.released': { sms: true } };
  const quiet = await buyerWithPreferences(sys, { phone: '+9779800000001', types: sms, timeZone, quietHours: { start: hhmm(minute), end: hhmm(minute + 1) } });
  const awake = await buyerWithPreferences(sys, { phone: '+9779800000002', types: sms, timeZone, quietHours: { start: hhmm(minute + 120), end: hhmm(minute + 180) } });
  const a = await createAuction(sys.pool, sys.redis);
  const released = (b: string) => announcement('released', `${a.id}:released:${b}`, { auctionId: a.id, buyerId: b, cancelledAt: Date.now() });
  const now = Date.now();
  const endsAt = now + MINUTE_MS - ((now + skew) % MINUTE_MS);
  t.ok(endsAt - Date.now() > 3_000, 'the quiet window still has seconds to run');
  await publishAnnouncements(amqp, cfg.topology.exchange, [released(quiet.id), released(awake.id)]);
  await publishAnnouncements(amqp, cfg.topology.exchange, [released(quiet.id)]);

  const mailsTo = (address: string) => smtp.mails.filter((m) => (Array.isArray(m.to) ? m.to : [m.to]).some((to) => to?.value.some((v) => v.address === address)));
  const smsTo = (phone: string) => provider.sent.filter((r) => r.fields.To === phone);
  await waitInbox(sys.pool, [quiet.id, awake.id], 2);
  await waitFor('the awake buyer told', async () => mailsTo(awake.email).length === 1 && smsTo('+9779800000002').length === 1);
  t.pass('the buyer outside quiet hours got the e-mail and the SMS at once; both have their inbox row');
  await sleep(Math.max(0, endsAt - Date.now() - 1_000));
  t.equal(mailsTo(quiet.email).length, 0, 'no e-mail inside the quiet hours');
  t.equal(smsTo('+9779800000001').length, 0, 'no SMS inside the quiet hours');
  const { rows } = await sys.pool.query<{ not_before: Date }>('SELECT not_before FROM notification_emails WHERE recipient_id = $1', [quiet.id]);
  t.equal(rows[0]!.not_before.getTime(), endsAt + skew, 'the e-mail is recorded to wait for the end of the window');

  const told = await waitFor('the quiet buyer told', async () => (mailsTo(quiet.email).length === 1 && smsTo('+9779800000001').length === 1 ? Date.now() : undefined), 10_000, 20);
  t.ok(told >= endsAt, `sent once the window ended (${told - endsAt} ms after)`);
  t.ok(told - endsAt < 2_000, 'and not long after');
  await amqp.quiet(800, 20_000, [cfg.topology.notifications, cfg.topology.email, cfg.topology.sms].flatMap((c) => [c.queue, ...cfg.topology.retryDelaysMs.map((d) => retryQueue(c, d))]));
  t.equal(mailsTo(quiet.email).length, 1, 'one e-mail');
  t.equal(smsTo('+9779800000001').length, 1, 'one SMS');
});
