/**
 * Sending a notification's e-mail once. The notifications worker records
 * each e-mail (notification_emails, keyed by event and recipient) in the
 * transaction that writes the inbox, and asks for it on the e-mail queue;
 * the e-mail worker sends it here, holding its row locked, and records it
 * sent in the same transaction. An e-mail asked for twice is sent once: the
 * second request finds it sent (or locked by the first, which sends it).
 *
 * A worker that dies between the SMTP server's acceptance and that commit
 * leaves the row unsent and the request unacked: the request is delivered
 * again and the e-mail sent again, as the same message (the Message-ID the
 * row holds), so a receiver can tell it from a new one. That window is one
 * SMTP reply to one commit; no e-mail is ever lost to it, and none is sent
 * twice outside it. A server that is down fails the send: the request goes
 * through the retry tiers and then the dead-letter queue with its reason;
 * the inbox, written before, is untouched.
 */
import { createHash } from 'node:crypto';
import type { Pool } from '../platform/db/pool.js';
import { lockUnsentEmail, type DeliveryKey } from './repository.js';
import { sendOnce, type Sending } from './channel-worker.js';
import type { SmtpChannel } from './channels/email.js';
import type { UnsubscribeLinks } from './unsubscribe.js';

/** The Message-ID of a notification's e-mail: the same for every attempt. */
export function emailMessageId(key: DeliveryKey): string {
  const digest = createHash('sha256').update(`${key.eventId}\u0000${key.recipientId}`).digest('hex').slice(0, 32);
  return `<${digest}.notification@stampede>`;
}

export class Emails {
  /** E-mails handed to the SMTP server since start (resends included), for tests and ops. */
  sent = 0;

  constructor(private readonly pool: Pool, private readonly smtp: SmtpChannel, private readonly links: UnsubscribeLinks) {}

  /** Sends the e-mail unless it was sent (or its quiet hours have not ended at `now`); resolves once it is recorded sent (or found so). */
  async send(key: DeliveryKey, now = Date.now()): Promise<Sending> {
    return sendOnce(this.pool, 'email', key, now, lockUnsentEmail, async (email) => {
      await this.smtp.send({
        to: email.address, subject: email.subject, text: email.body, messageId: email.messageId,
        unsubscribeUrl: this.links.url(email.recipientId, email.type),
      });
      this.sent++;
    });
  }
}
