/**
 * A mail catcher for trying Stampede on one machine: an SMTP server that
 * accepts every message and keeps the last `keep` in memory (the oldest go
 * first), and a small HTTP server that shows them as JSON at GET /messages,
 * newest first. Both listen on loopback only: it is a development tool, not
 * a mail server, and nothing it holds survives a restart.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

export interface CaughtMail {
  /** 1, 2, … in arrival order since start. */
  id: number;
  receivedAt: string;
  from: string;
  to: string[];
  subject: string;
  messageId: string | null;
  text: string;
  html: string | null;
  headers: Record<string, string>;
}

export interface MailCatcherSettings {
  /** Where SMTP listens (port 0: a free one). */
  smtpHost: string;
  smtpPort: number;
  httpPort: number;
  keep: number;
  /** Told of a client connection that failed (a sender reset it, timed out): the catcher keeps listening. */
  onConnectionError?: (err: Error) => void;
}

export class MailCatcher {
  private readonly mails: CaughtMail[] = [];
  private received = 0;
  private readonly smtp: SMTPServer;
  private readonly http: Server;

  constructor(private readonly settings: MailCatcherSettings) {
    this.smtp = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
      onData: (stream, _session, done) => {
        simpleParser(stream).then((mail) => {
          this.keep({
            id: ++this.received, receivedAt: new Date().toISOString(), from: mail.from?.text ?? '',
            to: (Array.isArray(mail.to) ? mail.to : mail.to ? [mail.to] : []).map((a) => a.text), subject: mail.subject ?? '',
            messageId: mail.messageId ?? null, text: mail.text ?? '', html: typeof mail.html === 'string' ? mail.html : null,
            headers: Object.fromEntries(mail.headerLines.map((h) => [h.key, h.line.replace(/^[^:]+:\s*/, '')])),
          });
          done();
        }, done);
      },
    });
    // Unheard, smtp-server's error event would end the process on the first sender that resets its connection.
    this.smtp.on('error', (err: Error) => this.settings.onConnectionError?.(err));
    this.http = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/messages') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"GET /messages"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ messages: [...this.mails].reverse() }));
    });
  }

  private keep(mail: CaughtMail): void {
    this.mails.push(mail);
    if (this.mails.length > this.settings.keep) this.mails.splice(0, this.mails.length - this.settings.keep);
  }

  /** Starts both servers; resolves with where they listen. */
  async start(): Promise<{ smtpUrl: string; messagesUrl: string }> {
    await new Promise<void>((resolve, reject) => {
      this.smtp.server.once('error', reject);
      this.smtp.listen(this.settings.smtpPort, this.settings.smtpHost, resolve);
    });
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.settings.httpPort, '127.0.0.1', resolve);
    });
    const smtpPort = (this.smtp.server.address() as AddressInfo).port;
    const httpPort = (this.http.address() as AddressInfo).port;
    return { smtpUrl: `smtp://${this.settings.smtpHost}:${smtpPort}`, messagesUrl: `http://127.0.0.1:${httpPort}/messages` };
  }

  async stop(): Promise<void> {
    this.http.closeAllConnections();
    await Promise.all([
      new Promise<void>((resolve) => this.smtp.close(() => resolve())),
      new Promise<void>((resolve) => this.http.close(() => resolve())),
    ]);
  }
}
