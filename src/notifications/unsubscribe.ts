/**
 * One-click unsubscribe links (RFC 8058): a link names a buyer and a
 * notification type, signed with an HMAC so nobody can switch off another
 * buyer's e-mail. The key is derived from the token secret under its own
 * label, so an unsubscribe signature is never a valid token signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { USER_ID } from '../platform/ids.js';
import type { Config } from '../platform/config.js';
import { NOTIFICATION_TYPES, type NotificationTypeName } from './types.js';

export class UnsubscribeLinks {
  private readonly key: Buffer;

  constructor(secret: string, private readonly publicUrl: string) {
    this.key = createHmac('sha256', secret).update('stampede one-click unsubscribe v1').digest();
  }

  private signatureOf(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload).digest();
  }

  token(buyerId: string, type: NotificationTypeName): string {
    const payload = `${buyerId}:${type}`;
    return `${Buffer.from(payload).toString('base64url')}.${this.signatureOf(payload).toString('base64url')}`;
  }

  /** The POST target of the List-Unsubscribe header. */
  url(buyerId: string, type: NotificationTypeName): string {
    return new URL(`/v1/notifications/unsubscribe?token=${this.token(buyerId, type)}`, this.publicUrl).toString();
  }

  /** What a token names, or undefined when it is not one this key signed. */
  verify(token: string): { buyerId: string; type: NotificationTypeName } | undefined {
    const m = /^([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return undefined;
    const payload = Buffer.from(m[1]!, 'base64url').toString('utf8');
    // Compared as text: two base64url spellings can decode to the same bytes (the last character's unused bits), and only ours is valid.
    const given = Buffer.from(m[2]!, 'ascii');
    if (!timingSafeEqual(given, Buffer.from(this.signatureOf(payload).toString('base64url'), 'ascii'))) return undefined;
    const [buyerId, type] = payload.split(':') as [string, string];
    if (!USER_ID.test(buyerId) || !Object.hasOwn(NOTIFICATION_TYPES, type)) return undefined;
    return { buyerId, type: type as NotificationTypeName };
  }
}

export const unsubscribeLinksOf = (cfg: Config) => new UnsubscribeLinks(cfg.STAMPEDE_JWT_SECRET, cfg.STAMPEDE_PUBLIC_URL);
