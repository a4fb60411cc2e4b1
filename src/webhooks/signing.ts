/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): a secret
 * is `whsec_` + base64 of 32 random bytes; a message is signed as
 * `v1,` + base64(HMAC-SHA256(secret bytes, `<webhook-id>.<webhook-timestamp>.<body>`)),
 * and `webhook-signature` carries one such signature per live secret,
 * space-separated (the new one and, for a while after a rotation, the old).
 */
import { createHmac, randomBytes } from 'node:crypto';

const PREFIX = 'whsec_';

export const newWebhookSecret = (): string => PREFIX + randomBytes(32).toString('base64');

const keyOf = (secret: string): Buffer => Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');

export function signatureOf(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  return 'v1,' + createHmac('sha256', keyOf(secret)).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64');
}

/** The three headers of one attempt, signed with every secret given (the current first). */
export function signedHeaders(secrets: string[], messageId: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => signatureOf(s, messageId, timestampSeconds, body)).join(' '),
  };
}
