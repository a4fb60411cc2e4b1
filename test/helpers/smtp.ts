/**
 * A real SMTP server for tests (smtp-server on 127.0.0.1, a free port) that
 * keeps every message it accepted, parsed by mailparser. Its behaviour can
 * be switched while it runs: refuse senders with a reply code (a server
 * that is down, or refusing for good), or run a hook once a message's data
 * has arrived and before the server answers it.
 */
import type { Test } from 'tap';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';

export interface SmtpCatcher {
  url: string;
  mails: ParsedMail[];
  /** The mails addressed to this address (another test's leftovers, resumed by this test's workers, are not). */
  mailsTo(address: string): ParsedMail[];
  /** Attempts to start a mail (MAIL FROM), accepted or not. */
  attempts: number;
  /** When set, MAIL FROM is answered with this code (e.g. 421, 451, 550). */
  refuseWith?: number;
  /** Client connections that failed (a sender killed mid-session resets its connection). */
  connectionErrors: Error[];
  /** Runs after a message arrived, before the server accepts it. */
  beforeAccept?: (mail: ParsedMail) => Promise<void>;
}

export async function smtpCatcher(t: Test): Promise<SmtpCatcher> {
  const catcher: SmtpCatcher = {
    url: '', mails: [], attempts: 0, connectionErrors: [],
    mailsTo: (address) => catcher.mails.filter((m) => [m.to ?? []].flat().some((to) => to.value.some((v) => v.address === address))),
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onMailFrom(_address, _session, callback) {
      catcher.attempts++;
      if (catcher.refuseWith === undefined) return callback();
      const err = Object.assign(new Error(`test server refuses with ${catcher.refuseWith}`), { responseCode: catcher.refuseWith });
      callback(err);
    },
    onData(stream, _session, callback) {
      simpleParser(stream).then(async (mail) => {
        catcher.mails.push(mail);
        await catcher.beforeAccept?.(mail);
        callback();
      }, callback);
    },
  });
  server.on('error', (err: Error) => catcher.connectionErrors.push(err));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  catcher.url = `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return catcher;
}
