/** The notifications API (buyers, with their bearer token): the inbox. */
import { AppError } from '../platform/errors.js';
import type { HttpServer } from '../platform/http/server.js';
import { pageLimit, type RouteKit } from '../platform/http/route-kit.js';
import { compileSchema, validate } from '../platform/http/validate.js';
import { seqOf, type Inbox } from './inbox.js';

export interface NotificationRouteDeps {
  inbox: Inbox;
}

export function registerNotificationRoutes(http: HttpServer, k: RouteKit, d: NotificationRouteDeps): void {
  // The actions take no body; one that is sent must be an empty object.
  const noFields = compileSchema<Record<string, never>>({ type: 'object', properties: {}, additionalProperties: false });
  const nothing = (raw: unknown) => raw === undefined || validate(noFields, raw);

  http.route('get', '/v1/notifications', async (ctx) => {
    const buyerId = k.buyerOf(ctx);
    const q = new URLSearchParams(ctx.query);
    const limit = pageLimit(q);
    const raw = q.get('before');
    const before = raw === null ? undefined : seqOf(raw);
    if (raw !== null && before === undefined) throw AppError.invalid('query:before', 'is invalid', 'before is not a notification id this list gave');
    return { status: 200, body: await d.inbox.page(buyerId, limit, before) };
  });
  http.route('post', '/v1/notifications/opened', async (ctx, raw) => {
    const buyerId = k.buyerOf(ctx);
    nothing(raw);
    return { status: 200, body: await d.inbox.open(buyerId) };
  });
  http.route('post', '/v1/notifications/read', async (ctx, raw) => {
    const buyerId = k.buyerOf(ctx);
    nothing(raw);
    return { status: 200, body: await d.inbox.markAllRead(buyerId) };
  });
  http.route('post', '/v1/notifications/:id/read', async (ctx, raw) => {
    const buyerId = k.buyerOf(ctx);
    const seq = seqOf(ctx.params[0]!);
    if (seq === undefined) throw new AppError('NOT_FOUND', 'no such notification');
    nothing(raw);
    return { status: 200, body: await d.inbox.markRead(buyerId, seq) };
  });
}
