/**
 * The e-mail channel on the real services and a real SMTP server: a buyer
 * who wants e-mail gets one mail per (event, recipient) however often the
 * announcement comes, with a subject, text and HTML bodies and RFC 8058
 * one-click unsubscribe whose signed link turns that type's e-mail off. An
 * SMTP server that is down delays the mail through the retry tiers (the
 * inbox is written at once), one down for good dead-letters the request
 * with its reason, and a send whose record is lost is sent again as the
 * same message.
 */
import t from 'tap';
import type { Test } from 'tap';
import type { ParsedMail } from 'mailparser';
import { boot, call, waitFor, type System } from '../helpers/system.js';
import { openAmqp, type Amqp } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, inboxRows, publishAnnouncements, waitInbox } from '../helpers/notifications.js';
import { smtpCatcher, type SmtpCatcher } from '../helpers/smtp.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { newBidId, randomId } from '../../src/platform/ids.js';
import { deadLetterQueue, retryQueue } from '../../src/platform/messaging/topology.js';
import { emailMessageId } from '../../src/notifications/emails.js';

async function system(t: Test): Promise<{ sys: System; amqp: Amqp; smtp: SmtpCatcher }> {
  const smtp = await smtpCatcher(t);
  const sys = await boot(t, { worker: true, env: { STAMPEDE_WORKER_QUEUES: 'notifications,email', STAMPEDE_SMTP_URL: smtp.url, STAMPEDE_SMTP_TIMEOUT_MS: '2000' } });
  return { sys, amqp: await openAmqp(t, sys.cfg), smtp };
}

async function buyerWithEmail(sys: System): Promise<{ id: string; email: string }> {
  const email = `buyer-${randomId(10)}@example.test`;
  const [b] = await createBuyers(sys.pool, [{ name: 'mail buyer', email }]);
  return { id: b!.id, email };
}

const allQueues = (sys: System) => [sys.cfg.topology.notifications, sys.cfg.topology.email].flatMap((c) => [c.queue, ...sys.cfg.topology.retryDelaysMs.map((d) => retryQueue(c, d))]);

const mailsTo = (smtp: SmtpCatcher, address: string): ParsedMail[] =>
  smtp.mails.filter((m) => (Array.isArray(m.to) ? m.to : [m.to]).some((a) => a?.value.some((v) => v.address === address)));

const header = (m: ParsedMail, name: string) => m.headerLines.find((h) => h.key === name.toLowerCase())?.line.replace(/^[^:]+:\s*/, '');

t.test('one mail per (event, recipient) across redeliveries: subject, text, HTML, one-click unsubscribe', async (t) => {
  const { sys, amqp, smtp } = await system(t);
  const x = await buyerWithEmail(sys);
  const [withoutAddress] = await sys.createBuyers(1);
  const a = await createAuction(sys.pool, sys.redis);
  const won = announcement('won', `${a.id}:won`, { auctionId: a.id, buyerId: x.id, bidId: newBidId(a.id), currency: 'EUR', price: 2100, paid: 2100, bonus: 0 });
  const outbid = announcement('outbid', `${newBidId(a.id)}:outbid`, { auctionId: a.id, buyerId: x.id, price: 1500, byBid: newBidId(a.id) });
  const lost = announcement('lost', `${a.id}:lost:${withoutAddress}`, { auctionId: a.id, buyerId: withoutAddress, outcome: 'sold', currency: 'EUR', price: 2100 });
  for (let i = 0; i < 3; i++) await publishAnnouncements(amqp, sys.cfg.topology.exchange, [won, outbid, lost]);
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [won, outbid], true);
  await waitFor('two mails', async () => mailsTo(smtp, x.email).length >= 2);
  await amqp.quiet(800, 30_000, allQueues(sys));

  const mails = mailsTo(smtp, x.email);
  t.equal(mails.length, 2, 'two mails for eight deliveries of two announcements');
  t.equal(smtp.mails.length, 2, 'and none to the buyer without an address (told in the inbox only)');
  t.equal((await inboxRows(sys.pool, [withoutAddress!])).length, 1);
  const wonMail = mails.find((m) => m.subject === 'You won Test lot')!;
  t.ok(wonMail, 'the subject is the title');
  t.match(wonMail.text, /^You paid EUR 21\.00\.\n/, 'the text body');
  t.match(String(wonMail.html), /<p>You paid EUR 21\.00\.<\/p>/, 'the HTML body');
  t.equal(wonMail.messageId, emailMessageId({ eventId: won.id, recipientId: x.id }), 'the Message-ID its row holds');
  t.equal(header(wonMail, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click', 'RFC 8058 one-click');
  const link = /^<(https?:\/\/[^>]+)>$/.exec(header(wonMail, 'List-Unsubscribe') ?? '')?.[1];
  t.ok(link, 'List-Unsubscribe is one https? link');
  t.match(wonMail.text, link!, 'the text links to it too');
  t.ok(await sys.pool.query('SELECT 1 FROM notification_emails WHERE sent_at IS NOT NULL AND recipient_id = $1', [x.id]).then((r) => r.rowCount === 2), 'both recorded sent');

  // One-click unsubscribe, as a mail client does it: POST the link with the form body.
  const target = new URL(link!);
  const forged = await call(`${sys.url}${target.pathname}?token=${target.searchParams.get('token')!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))}`, { method: 'POST' });
  t.equal(forged.status, 400, 'a tampered token is refused');
  t.same(forged.body.errors, [{ path: 'query:token', message: 'is invalid' }]);
  const off = await call(`${sys.url}${target.pathname}${target.search}`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click',
  });
  t.equal(off.status, 200);
  t.same(off.body, { type: 'auction.won', email: false });
  const prefs = (await call(`${sys.url}/v1/notification-preferences`, { headers: { authorization: `Bearer ${sys.token(x.id)}` } })).body;
  t.same(prefs.types['auction.won'], { in_app: true, email: false, sms: false }, "that type's e-mail is off");
  t.same(prefs.types['auction.outbid'], { in_app: true, email: true, sms: false }, 'the others are not');

  const b = await createAuction(sys.pool, sys.redis);
  const wonAgain = announcement('won', `${b.id}:won`, { auctionId: b.id, buyerId: x.id, bidId: newBidId(b.id), currency: 'EUR', price: 900, paid: 900, bonus: 0 });
  const outbidAgain = announcement('outbid', `${newBidId(b.id)}:outbid`, { auctionId: b.id, buyerId: x.id, price: 800, byBid: newBidId(b.id) });
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [wonAgain, outbidAgain]);
  await waitFor('the outbid mail', async () => mailsTo(smtp, x.email).length >= 3);
  await amqp.quiet(500, 30_000, allQueues(sys));
  t.same(mailsTo(smtp, x.email).slice(2).map((m) => m.subject), ['You were outbid on Test lot'], 'no more won mails, outbid ones still');
  t.equal((await inboxRows(sys.pool, [x.id])).filter((r) => r.type === 'auction.won').length, 2, 'the inbox still has both wins');
});

t.test('SMTP down, then back: the mail goes through the retry tiers; the inbox is written at once', async (t) => {
  const { sys, amqp, smtp } = await system(t);
  const x = await buyerWithEmail(sys);
  const a = await createAuction(sys.pool, sys.redis);
  smtp.refuseWith = 421;
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [announcement('released', `${a.id}:released:${x.id}`, { auctionId: a.id, buyerId: x.id, cancelledAt: Date.now() })]);
  await waitInbox(sys.pool, [x.id], 1);
  t.equal(smtp.mails.length, 0, 'told in the inbox while the SMTP server refuses');
  await waitFor('a retry', async () => smtp.attempts >= 2);
  smtp.refuseWith = undefined;
  await waitFor('the mail', async () => mailsTo(smtp, x.email).length === 1);
  await amqp.quiet(500, 30_000, allQueues(sys));
  t.equal(mailsTo(smtp, x.email).length, 1, 'sent once when the server was back');
  t.ok(smtp.attempts >= 3, `after ${smtp.attempts} attempts`);
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.email)), 0, 'nothing dead-lettered');
});

t.test('SMTP down for good: the request dead-letters with its reason after the tiers; a 5xx at once', async (t) => {
  const { sys, amqp, smtp } = await system(t);
  const [x, y] = [await buyerWithEmail(sys), await buyerWithEmail(sys)];
  const a = await createAuction(sys.pool, sys.redis);
  smtp.refuseWith = 451;
  const released = (b: string) => announcement('released', `${a.id}:released:${b}`, { auctionId: a.id, buyerId: b, cancelledAt: Date.now() });
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [released(x.id)]);
  const [down] = await amqp.take(deadLetterQueue(sys.cfg.topology.email), 1, 20_000);
  t.match(String(down!.properties.headers?.['x-stampede-last-error']), /451/, 'the reason names the reply');
  t.equal(down!.properties.headers?.['x-stampede-attempt'], sys.cfg.topology.retryDelaysMs.length, 'after every tier');
  amqp.ch.ack(down!);

  smtp.refuseWith = 550;
  const before = smtp.attempts;
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [released(y.id)]);
  const [refused] = await amqp.take(deadLetterQueue(sys.cfg.topology.email), 1, 20_000);
  t.match(String(refused!.properties.headers?.['x-stampede-last-error']), /refused the mail for good.*550/);
  t.equal(smtp.attempts - before, 1, 'a permanent refusal is not retried');
  amqp.ch.ack(refused!);
  t.same((await inboxRows(sys.pool, [x.id, y.id])).length, 2, 'both told in the inbox');
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.notifications)), 0, 'the notifications queue is untouched');
});

t.test('the record of a send lost (its connection killed after the SMTP server accepted): sent again, as the same message', async (t) => {
  const { sys, amqp, smtp } = await system(t);
  const x = await buyerWithEmail(sys);
  const a = await createAuction(sys.pool, sys.redis);
  let killed = 0;
  smtp.beforeAccept = async () => {
    if (killed++ > 0) return;
    // The e-mail worker holds the row locked while it sends: end that transaction's connection before it can record the send.
    await sys.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND state = 'idle in transaction' AND query LIKE '%FROM notification_emails%FOR UPDATE SKIP LOCKED%'`,
    );
  };
  const released = announcement('released', `${a.id}:released:${x.id}`, { auctionId: a.id, buyerId: x.id, cancelledAt: Date.now() });
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [released]);
  await waitFor('the second copy', async () => mailsTo(smtp, x.email).length >= 2);
  await amqp.quiet(800, 30_000, allQueues(sys));
  const mails = mailsTo(smtp, x.email);
  t.equal(mails.length, 2, 'sent twice: once unrecorded, once recorded');
  t.same(new Set(mails.map((m) => m.messageId)), new Set([emailMessageId({ eventId: released.id, recipientId: x.id })]), 'both with one Message-ID');
  const { rows } = await sys.pool.query<{ sent: boolean }>('SELECT sent_at IS NOT NULL AS sent FROM notification_emails WHERE recipient_id = $1', [x.id]);
  t.same(rows, [{ sent: true }], 'one e-mail row, recorded sent');
  t.equal((await inboxRows(sys.pool, [x.id])).length, 1, 'one inbox row');
});
