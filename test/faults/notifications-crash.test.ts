/**
 * Fault: the worker process that tells buyers (the notifications and e-mail
 * queues) is killed with SIGKILL mid-stream, twice, then another takes
 * over. Every announcement must end as exactly one inbox row for the buyer
 * it names, and one e-mail record sent once. A kill between the SMTP
 * server's acceptance and the record of the send may send that mail again:
 * it goes out as the same message (same Message-ID), so the receiver can
 * tell; no buyer ever gets a message meant for another, and no message is
 * missing.
 */
import t from 'tap';
import { boot, waitFor } from '../helpers/system.js';
import { faultEnv, openAmqp, spawnRole } from '../helpers/fault-kit.js';
import { createAuction } from '../helpers/auctions.js';
import { announcement, publishAnnouncements } from '../helpers/notifications.js';
import { smtpCatcher } from '../helpers/smtp.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { randomId } from '../../src/platform/ids.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';
import { emailMessageId } from '../../src/notifications/emails.js';

const TOTAL = 600;

t.test(`the notifications worker SIGKILLed mid-stream, twice: ${TOTAL} announcements, one inbox row and one mail each`, async (t) => {
  const smtp = await smtpCatcher(t);
  const env = faultEnv({
    STAMPEDE_SMTP_URL: smtp.url, STAMPEDE_WORKER_QUEUES: 'notifications,email',
    // Small batches: many transactions, so each kill lands between some of them.
    STAMPEDE_WORKER_BATCH: '25', STAMPEDE_WORKER_PREFETCH: '100',
  });
  const sys = await boot(t, { api: false, env });
  const amqp = await openAmqp(t, sys.cfg);
  const a = await createAuction(sys.pool, sys.redis);
  const run = randomId(6);
  const buyers = await createBuyers(sys.pool, Array.from({ length: TOTAL }, (_, i) => ({ name: `crash buyer ${i}`, email: `crash-${run}-${i}@example.test` })));
  const addressOf = new Map(buyers.map((b, i) => [b.id, `crash-${run}-${i}@example.test`]));
  const events = buyers.map((b) => announcement('released', `${a.id}:released:${b.id}`, { auctionId: a.id, buyerId: b.id, cancelledAt: Date.now() }));
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, events);

  const inboxCount = async () => (await sys.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications WHERE data->>\'auctionId\' = $1', [a.id])).rows[0]!.n;
  const sentCount = async () => (await sys.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM notification_emails WHERE recipient_id = ANY($1) AND sent_at IS NOT NULL', [buyers.map((b) => b.id)])).rows[0]!.n;

  // Round 1 is killed while the inbox is being written, round 2 while the mails go out.
  const rounds = [
    { what: 'some buyers told', due: async () => (await inboxCount()) >= 150 },
    { what: 'some mails sent', due: async () => smtp.mails.length >= 60 },
  ];
  for (const [i, round] of rounds.entries()) {
    const child = spawnRole(t, 'worker', env);
    await waitFor(`round ${i + 1}: ${round.what}`, async () => {
      if (child.proc.exitCode !== null) throw new Error(`worker exited early: ${child.output()}`);
      return round.due();
    }, 60_000, 2);
    child.proc.kill('SIGKILL');
    const exit = await child.exited;
    t.equal(exit.signal, 'SIGKILL', `round ${i + 1}: worker killed (${await inboxCount()} rows written, ${smtp.mails.length} mails arrived)`);
  }

  const final = spawnRole(t, 'worker', env);
  await waitFor('every row written and every mail sent', async () => {
    if (final.proc.exitCode !== null) throw new Error(`worker exited early: ${final.output()}`);
    return (await inboxCount()) >= TOTAL && (await sentCount()) >= TOTAL;
  }, 120_000);
  await amqp.quiet(500, 30_000, [sys.cfg.topology.notifications.queue, sys.cfg.topology.email.queue]);

  const rows = (await sys.pool.query<{ event_id: string; recipient_id: string }>(
    'SELECT event_id, recipient_id FROM notifications WHERE data->>\'auctionId\' = $1', [a.id])).rows;
  t.equal(rows.length, TOTAL, 'one inbox row per announcement');
  t.equal(new Set(rows.map((r) => r.recipient_id)).size, TOTAL, 'each buyer one row');
  t.ok(rows.every((r) => r.event_id === `${a.id}:released:${r.recipient_id}`), 'each row for the buyer its event names');

  const records = (await sys.pool.query<{ recipient_id: string; address: string; sent_at: Date | null }>(
    'SELECT recipient_id, address, sent_at FROM notification_emails WHERE recipient_id = ANY($1)', [buyers.map((b) => b.id)])).rows;
  t.equal(records.length, TOTAL, 'one e-mail record per announcement');
  t.ok(records.every((r) => r.sent_at !== null && r.address === addressOf.get(r.recipient_id)), 'each sent, to its own buyer');

  const expected = new Map(buyers.map((b) => [emailMessageId({ eventId: `${a.id}:released:${b.id}`, recipientId: b.id }), addressOf.get(b.id)]));
  const ours = smtp.mails.filter((m) => expected.has(m.messageId ?? ''));
  t.equal(ours.length, smtp.mails.length, 'no mail the announcements did not ask for');
  t.equal(new Set(ours.map((m) => m.messageId)).size, TOTAL, 'every message arrived');
  const misaddressed = ours.filter((m) => {
    const to = (Array.isArray(m.to) ? m.to : [m.to]).flatMap((x) => x?.value.map((v) => v.address) ?? []);
    return to.length !== 1 || to[0] !== expected.get(m.messageId!);
  });
  t.equal(misaddressed.length, 0, 'each message to the buyer it was meant for, and only them');
  t.ok(ours.length - TOTAL <= 2 * Number(env.STAMPEDE_WORKER_PREFETCH), 'resent only what was in flight at a kill');
  t.comment(`${ours.length - TOTAL} mails sent again (same Message-ID) across two kills`);
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.notifications)), 0, 'nothing dead-lettered');
  t.equal(await amqp.depth(deadLetterQueue(sys.cfg.topology.email)), 0);
  final.proc.kill('SIGTERM');
  await final.exited;
});
