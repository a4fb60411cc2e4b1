/** The operators' notifications API: announcements now or at a time, their progress, and cancelling one not started. */
import type { HttpServer } from '../platform/http/server.js';
import type { RouteKit } from '../platform/http/route-kit.js';
import { compileSchema, DATE_TIME, validate } from '../platform/http/validate.js';
import { SEND_ID, USER_ID } from '../platform/ids.js';
import { MAX_AUDIENCE_BUYERS, type NewAnnouncement, type ScheduledSends } from './sends.js';
import { CHANNELS } from './types.js';
import { announcementDocs } from './api-doc.js';

const ANNOUNCEMENT_SCHEMA = {
  type: 'object',
  properties: {
    // Exactly one of the two: a list of buyers, or the followers of a collection.
    audience: {
      type: 'object',
      properties: {
        buyerIds: { type: 'array', minItems: 1, maxItems: MAX_AUDIENCE_BUYERS, uniqueItems: true, items: { type: 'string', pattern: USER_ID.source } },
        collection: { type: 'string', minLength: 1, maxLength: 200 },
      },
      minProperties: 1,
      maxProperties: 1,
      additionalProperties: false,
    },
    // As the inbox holds them (1733000000000_notifications.sql).
    title: { type: 'string', minLength: 1, maxLength: 300 },
    body: { type: 'string', minLength: 1, maxLength: 2000 },
    channels: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...CHANNELS] } },
    sendAt: DATE_TIME,
  },
  required: ['audience', 'title', 'body'],
  additionalProperties: false,
};

export function registerAnnouncementRoutes(http: HttpServer, k: RouteKit, sends: ScheduledSends): void {
  const announcementBody = compileSchema<NewAnnouncement>(ANNOUNCEMENT_SCHEMA);
  const sendId = (value: string) => k.idParam(value, SEND_ID, 'notification');
  const doc = announcementDocs({ announcement: announcementBody });

  http.route('post', '/v1/ops/notifications', async (ctx, raw) => {
    const p = await k.principalOf(ctx, ['operator']);
    const body = validate(announcementBody, raw);
    return k.idempotent(ctx, p, body, async () => ({ status: 202, body: await sends.announce(body) }));
  }, { doc: doc.announce });
  http.route('get', '/v1/ops/notifications/:id', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    return { status: 200, body: await sends.get(sendId(ctx.params[0]!)) };
  }, { doc: doc.get });
  http.route('del', '/v1/ops/notifications/:id', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    await sends.cancel(sendId(ctx.params[0]!));
    return { status: 204, body: undefined };
  }, { body: false, doc: doc.cancel });
}
