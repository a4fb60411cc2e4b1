/**
 * The SMS channel's adapter: a Twilio-compatible provider over HTTP at
 * STAMPEDE_SMS_URL, one form POST (To, From, Body) per message, with
 * credentials in the URL sent as HTTP Basic auth. A 2xx answer is sent.
 * 429 and 5xx (the provider is throttling or down), no answer within the
 * timeout, or no connection are worth retrying; any other answer refuses
 * this message for good (a bad number, a blocked sender) and is a
 * PermanentError naming the provider's reason.
 */
import { PermanentError } from '../../platform/messaging/consumer.js';

export interface OutgoingSms {
  to: string;
  body: string;
}

export interface SmsSettings {
  url: string;
  from: string;
  timeoutMs: number;
}

/** The most of a provider's answer a refusal quotes. */
const MAX_REASON = 300;

export class SmsChannel {
  private readonly endpoint: string;
  private readonly authorization: string | undefined;

  constructor(private readonly settings: SmsSettings) {
    // fetch refuses URLs that carry credentials: they travel as a header instead.
    const url = new URL(settings.url);
    this.authorization = url.username || url.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
      : undefined;
    url.username = url.password = '';
    this.endpoint = url.toString();
  }

  async send(sms: OutgoingSms): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (this.authorization) headers.authorization = this.authorization;
    let answer: Response;
    let reason: string;
    try {
      answer = await fetch(this.endpoint, {
        method: 'POST', headers, body: new URLSearchParams({ To: sms.to, From: this.settings.from, Body: sms.body }),
        signal: AbortSignal.timeout(this.settings.timeoutMs), redirect: 'error',
      });
      reason = (await answer.text()).slice(0, MAX_REASON);
    } catch (err) {
      throw new Error(`the SMS provider did not answer: ${(err as Error).message}`);
    }
    if (answer.ok) return;
    if (answer.status === 429 || answer.status >= 500) throw new Error(`the SMS provider answered ${answer.status}: ${reason}`);
    throw new PermanentError(`the SMS provider refused the message for good: ${answer.status} ${reason}`);
  }
}
