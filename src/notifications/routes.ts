/** The notifications API (buyers, with their bearer token): the inbox, its live stream, their preferences, the collections they follow and the sales they watch. */
import { AppError } from '../platform/errors.js';
import type { HttpServer } from '../platform/http/server.js';
import { pageLimit, type RouteKit } from '../platform/http/route-kit.js';
import { compileSchema, validate } from '../platform/http/validate.js';
import { seqOf, type Inbox } from './inbox.js';
import type { Preferences, PreferencesDocument } from './preferences.js';
import { CHANNELS, NOTIFICATION_TYPE_NAMES } from './types.js';
import type { UnsubscribeLinks } from './unsubscribe.js';
import type { EventStreams } from '../platform/http/sse.js';
import type { NotificationStreams } from './stream.js';
import type { Interests } from './interests.js';
import { SALE_ID } from '../platform/ids.js';
import { notificationDocs } from './api-doc.js';

export interface NotificationRouteDeps {
  inbox: Inbox;
  preferences: Preferences;
  unsubscribeLinks: UnsubscribeLinks;
  eventStreams: EventStreams;
  streams: NotificationStreams;
  interests: Interests;
}

/** The longest collection name (buyer_interests and auctions hold 200). */
const MAX_COLLECTION = 200;

/** A collection named in a path, percent-decoded: 1 to MAX_COLLECTION characters, no control characters. */
function collectionOf(raw: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw AppError.invalid('path:collection', 'is not percent-encoded UTF-8');
  }
  if (name.length < 1 || name.length > MAX_COLLECTION) throw AppError.invalid('path:collection', `must be 1 to ${MAX_COLLECTION} characters`);
  if (/\p{Cc}/u.test(name)) throw AppError.invalid('path:collection', 'must not contain control characters');
  return name;
}

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });
const CLOCK = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' };
const switches = { type: 'object', properties: Object.fromEntries(CHANNELS.map((c) => [c, { type: 'boolean' }])), additionalProperties: false };

const PREFERENCES_SCHEMA = {
  type: 'object',
  properties: {
    channels: switches,
    types: { type: 'object', properties: Object.fromEntries(NOTIFICATION_TYPE_NAMES.map((t) => [t, switches])), additionalProperties: false },
    email: nullable({ type: 'string', minLength: 3, maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' }),
    phone: nullable({ type: 'string', pattern: '^\\+[1-9][0-9]{1,14}$', description: 'E.164' }),
    timeZone: nullable({ type: 'string', minLength: 1, maxLength: 64 }),
    quietHours: nullable({ type: 'object', properties: { start: CLOCK, end: CLOCK }, required: ['start', 'end'], additionalProperties: false }),
  },
  additionalProperties: false,
};

export function registerNotificationRoutes(http: HttpServer, k: RouteKit, d: NotificationRouteDeps): void {
  // The actions take no body; one that is sent must be an empty object.
  const noFields = compileSchema<Record<string, never>>({ type: 'object', properties: {}, additionalProperties: false });
  const nothing = (raw: unknown) => raw === undefined || validate(noFields, raw);

  const preferencesBody = compileSchema<PreferencesDocument>(PREFERENCES_SCHEMA);
  const doc = notificationDocs({ preferences: preferencesBody, nothing: noFields });

  http.route('get', '/v1/notification-preferences', async (ctx) => ({ status: 200, body: await d.preferences.get((await k.buyerOf(ctx))) }), { doc: doc.preferences });
  http.route('put', '/v1/notification-preferences', async (ctx, raw) => {
    const buyerId = (await k.buyerOf(ctx));
    return { status: 200, body: await d.preferences.replace(buyerId, validate(preferencesBody, raw)) };
  }, { doc: doc.replacePreferences });
  // RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click` (a form body, not read) to the link; the signed token is the authority.
  http.route('post', '/v1/notifications/unsubscribe', async (ctx) => {
    const token = new URLSearchParams(ctx.query).get('token') ?? '';
    const link = d.unsubscribeLinks.verify(token);
    if (!link) throw AppError.invalid('query:token', 'is invalid', 'token is not an unsubscribe link Stampede signed');
    return { status: 200, body: await d.preferences.switchEmailOff(link.buyerId, link.type) };
  }, { body: false, doc: doc.unsubscribe });
  http.route('get', '/v1/notifications', async (ctx) => {
    const buyerId = (await k.buyerOf(ctx));
    const q = new URLSearchParams(ctx.query);
    const limit = pageLimit(q);
    const raw = q.get('before');
    const before = raw === null ? undefined : seqOf(raw);
    if (raw !== null && before === undefined) throw AppError.invalid('query:before', 'is invalid', 'before is not a notification id this list gave');
    return { status: 200, body: await d.inbox.page(buyerId, limit, before) };
  }, { doc: doc.inbox });
  d.eventStreams.route('/v1/notifications/stream', async (ctx) => {
    const buyerId = (await k.buyerOf(ctx));
    const after = ctx.lastEventId === '' ? undefined : seqOf(ctx.lastEventId);
    if (ctx.lastEventId !== '' && after === undefined) {
      throw AppError.invalid('header:Last-Event-ID', 'is invalid', 'Last-Event-ID is not a notification id this stream sent');
    }
    return (stream) => d.streams.follow(buyerId, after, stream);
  }, doc.stream);
  http.route('post', '/v1/notifications/opened', async (ctx, raw) => {
    const buyerId = (await k.buyerOf(ctx));
    nothing(raw);
    return { status: 200, body: await d.inbox.open(buyerId) };
  }, { doc: doc.opened });
  http.route('post', '/v1/notifications/read', async (ctx, raw) => {
    const buyerId = (await k.buyerOf(ctx));
    nothing(raw);
    return { status: 200, body: await d.inbox.markAllRead(buyerId) };
  }, { doc: doc.readAll });
  http.route('get', '/v1/interests', async (ctx) => ({ status: 200, body: await d.interests.of((await k.buyerOf(ctx))) }), { doc: doc.interests });
  // PUT puts the interest in place: 201 when this created it, 200 when it was there (the same body, its first `since`).
  http.route('put', '/v1/interests/:collection', async (ctx, raw) => {
    const buyerId = (await k.buyerOf(ctx));
    const collection = collectionOf(ctx.params[0]!);
    nothing(raw);
    const { interest, created } = await d.interests.follow(buyerId, collection);
    return { status: created ? 201 : 200, body: interest };
  }, { doc: doc.follow });
  http.route('del', '/v1/interests/:collection', async (ctx) => {
    const buyerId = (await k.buyerOf(ctx));
    await d.interests.unfollow(buyerId, collectionOf(ctx.params[0]!));
    return { status: 204 };
  }, { body: false, doc: doc.unfollow });
  http.route('put', '/v1/sales/:id/watch', async (ctx, raw) => {
    const buyerId = (await k.buyerOf(ctx));
    const saleId = k.idParam(ctx.params[0]!, SALE_ID, 'sale');
    nothing(raw);
    const { watch, created } = await d.interests.watch(buyerId, saleId);
    return { status: created ? 201 : 200, body: watch };
  }, { doc: doc.watch });
  http.route('del', '/v1/sales/:id/watch', async (ctx) => {
    const buyerId = (await k.buyerOf(ctx));
    await d.interests.unwatch(buyerId, k.idParam(ctx.params[0]!, SALE_ID, 'sale'));
    return { status: 204 };
  }, { body: false, doc: doc.unwatch });
  http.route('post', '/v1/notifications/:id/read', async (ctx, raw) => {
    const buyerId = (await k.buyerOf(ctx));
    const seq = seqOf(ctx.params[0]!);
    if (seq === undefined) throw new AppError('NOT_FOUND', 'no such notification');
    nothing(raw);
    return { status: 200, body: await d.inbox.markRead(buyerId, seq) };
  }, { doc: doc.readOne });
}
