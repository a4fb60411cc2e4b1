/**
 * The e-mail channel's adapter: nodemailer over SMTP to STAMPEDE_SMTP_URL.
 * Each mail has a text and an HTML body, the Message-ID its notification
 * recorded (a resend is the same message), and RFC 8058 one-click
 * unsubscribe headers. A refusal the server calls permanent (5xx: no such
 * mailbox) is a PermanentError; anything else (4xx, connection refused,
 * timeouts) is worth retrying.
 */
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import { PermanentError } from '../../platform/messaging/consumer.js';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  messageId: string;
  unsubscribeUrl: string;
}

export interface SmtpSettings {
  url: string;
  from: string;
  timeoutMs: number;
  /** SMTP connections kept open and reused (one per lane that sends at once); 1 when unset. */
  connections?: number;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class SmtpChannel {
  private readonly transport: Transporter;

  constructor(private readonly settings: SmtpSettings) {
    // Pooled: a connection (and its greeting) per mail was the cost of every send.
    this.transport = nodemailer.createTransport({
      url: settings.url, pool: true, maxConnections: settings.connections ?? 1, maxMessages: Infinity, connectionTimeout: settings.timeoutMs, greetingTimeout: settings.timeoutMs, socketTimeout: settings.timeoutMs,
    });
  }

  async send(mail: OutgoingMail): Promise<void> {
    const footer = `You receive these e-mails because of your Stampede notification preferences. Stop this kind: ${mail.unsubscribeUrl}`;
    try {
      await this.transport.sendMail({
        from: this.settings.from,
        to: mail.to,
        subject: mail.subject,
        messageId: mail.messageId,
        text: `${mail.text}\n\n--\n${footer}\n`,
        html: `<p>${escapeHtml(mail.text)}</p><hr><p style="font-size:small">You receive these e-mails because of your Stampede notification preferences. `
          + `<a href="${escapeHtml(mail.unsubscribeUrl)}">Stop this kind of e-mail</a>.</p>`,
        headers: { 'List-Unsubscribe': `<${mail.unsubscribeUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
      });
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      if (code !== undefined && code >= 500) throw new PermanentError(`the SMTP server refused the mail for good: ${(err as Error).message}`);
      throw err;
    }
  }

  close(): void {
    this.transport.close();
  }
}
