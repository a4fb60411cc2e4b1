/**
 * Sending a notification's SMS once, as its e-mail is sent
 * (src/notifications/emails.ts): the notifications worker records each SMS
 * (notification_sms, keyed by event and recipient) in the transaction that
 * writes the inbox and asks for it on the SMS queue; the SMS worker sends it
 * holding its row locked and records it sent in the same transaction. A
 * worker that dies between the provider's 2xx and that commit sends it
 * again on redelivery (that window is one HTTP answer to one commit); no SMS
 * is lost to it. A provider that is down retries through the SMS queue's
 * tiers, then dead-letters with its reason; one that refuses the message
 * for good dead-letters it at once.
 */
import type { Pool } from '../platform/db/pool.js';
import { lockUnsentSms, type DeliveryKey } from './repository.js';
import { sendOnce, type Sending } from './channel-worker.js';
import type { SmsChannel } from './channels/sms.js';

/** Longest text an SMS carries (what Twilio accepts: ten concatenated segments). */
export const MAX_SMS_LENGTH = 1600;

/** A notification as one text: its title and body, cut to what an SMS carries. */
export function smsTextOf(title: string, body: string): string {
  const text = `${title}. ${body}`;
  return text.length <= MAX_SMS_LENGTH ? text : `${text.slice(0, MAX_SMS_LENGTH - 1)}…`;
}

export class TextMessages {
  /** SMS handed to the provider since start (resends included), for tests and ops. */
  sent = 0;

  constructor(private readonly pool: Pool, private readonly provider: SmsChannel) {}

  /** Sends the SMS unless it was sent (or its quiet hours have not ended at `now`); resolves once it is recorded sent (or found so). */
  async send(key: DeliveryKey, now = Date.now()): Promise<Sending> {
    return sendOnce(this.pool, 'sms', key, now, lockUnsentSms, async (sms) => {
      await this.provider.send({ to: sms.phone, body: sms.body });
      this.sent++;
    });
  }
}
