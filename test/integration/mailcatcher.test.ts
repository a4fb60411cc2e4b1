/**
 * The mail catcher `npm start` runs: a real SMTP server on loopback that the
 * e-mail channel's own adapter sends to, keeping the last N mails and
 * showing them newest first at GET /messages; and `stampede start` runs it
 * only when STAMPEDE_SMTP_URL is the default.
 */
import t from 'tap';
import { connect } from 'node:net';
import { once } from 'node:events';
import { testConfig, waitFor } from '../helpers/system.js';
import { startMailcatcher } from '../../src/roles/index.js';
import { catchesMail, ROLES } from '../../src/roles/all.js';
import { SmtpChannel } from '../../src/notifications/channels/email.js';
import { createLogger } from '../../src/platform/log.js';

t.test('keeps the last N mails and shows them at GET /messages, newest first', async (t) => {
  const cfg = testConfig({ STAMPEDE_SMTP_URL: 'smtp://127.0.0.1:0', STAMPEDE_MAILCATCHER_HTTP_PORT: '0', STAMPEDE_MAILCATCHER_KEEP: '2' });
  const catcher = await startMailcatcher(cfg, createLogger('silent', 'mailcatcher'));
  t.teardown(() => catcher.stop());
  const smtp = new SmtpChannel({ url: catcher.smtpUrl, from: cfg.STAMPEDE_MAIL_FROM, timeoutMs: 2_000 });
  t.teardown(() => smtp.close());
  for (const n of [1, 2, 3]) {
    await smtp.send({ to: `buyer${n}@example.test`, subject: `Mail ${n}`, text: `Body ${n}`, messageId: `<m${n}@stampede>`, unsubscribeUrl: `http://127.0.0.1/u${n}` });
  }
  const answer = await fetch(catcher.messagesUrl);
  t.equal(answer.status, 200);
  const { messages } = (await answer.json()) as { messages: { id: number; to: string[]; subject: string; text: string; messageId: string; headers: Record<string, string> }[] };
  t.same(messages.map((m) => m.subject), ['Mail 3', 'Mail 2'], 'the last two, newest first');
  t.same(messages[0]!.to, ['buyer3@example.test']);
  t.match(messages[0]!.text, /^Body 3\n/);
  t.equal(messages[0]!.messageId, '<m3@stampede>');
  t.equal(messages[0]!.headers['list-unsubscribe'], '<http://127.0.0.1/u3>', 'headers as sent');
  t.same(messages.map((m) => m.id), [3, 2]);
  t.equal((await fetch(catcher.messagesUrl.replace('/messages', '/other'))).status, 404);
});

t.test('a sender that resets its connection mid-session leaves the catcher up', async (t) => {
  const cfg = testConfig({ STAMPEDE_SMTP_URL: 'smtp://127.0.0.1:0', STAMPEDE_MAILCATCHER_HTTP_PORT: '0' });
  const warnings: string[] = [];
  const log = createLogger('silent', 'mailcatcher');
  log.warn = ((_obj: unknown, msg?: string) => warnings.push(msg ?? '')) as typeof log.warn;
  const catcher = await startMailcatcher(cfg, log);
  t.teardown(() => catcher.stop());
  const { hostname, port } = new URL(catcher.smtpUrl);
  const socket = connect(Number(port), hostname);
  await once(socket, 'data');
  socket.write('EHLO crash.test\r\nMAIL FROM:<a@example.test>\r\n');
  await once(socket, 'data');
  socket.resetAndDestroy();
  await waitFor('the catcher to hear of it', async () => warnings.length > 0, 5_000);
  t.same(warnings, ["a sender's connection failed"], 'logged, loudly');
  const smtp = new SmtpChannel({ url: catcher.smtpUrl, from: cfg.STAMPEDE_MAIL_FROM, timeoutMs: 2_000 });
  t.teardown(() => smtp.close());
  await smtp.send({ to: 'after@example.test', subject: 'After', text: 'still here', messageId: '<after@stampede>', unsubscribeUrl: 'http://127.0.0.1/u' });
  const { messages } = (await (await fetch(catcher.messagesUrl)).json()) as { messages: { subject: string }[] };
  t.same(messages.map((m) => m.subject), ['After'], 'and takes the next mail');
});

t.test('`stampede start` runs it only when STAMPEDE_SMTP_URL is the default', async (t) => {
  t.equal(catchesMail(testConfig({ STAMPEDE_SMTP_URL: undefined })), true, 'the default');
  t.equal(catchesMail(testConfig({ STAMPEDE_SMTP_URL: 'smtp://127.0.0.1:1025/' })), true, 'the default, spelled with a slash');
  t.equal(catchesMail(testConfig({ STAMPEDE_SMTP_URL: 'smtp://mail.example.test:587' })), false, 'a real server');
  t.notOk(ROLES.includes('mailcatcher'), 'not one of the roles `stampede all` runs');
});
