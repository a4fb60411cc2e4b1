/** The webhooks API: sellers (their own endpoints) and operators (all) register, change, rotate, list and recover endpoints; anyone reads the public event catalogue. */
import { AppError } from '../platform/errors.js';
import type { HttpServer, RequestContext } from '../platform/http/server.js';
import { pageLimit, shownOnce, type RouteKit } from '../platform/http/route-kit.js';
import { compileSchema, DATE_TIME, validate } from '../platform/http/validate.js';
import { WEBHOOK_ID, WEBHOOK_MESSAGE_ID } from '../platform/ids.js';
import { isRealDateTime } from '../platform/time.js';
import { PUBLIC_EVENT_NAMES } from '../events/catalogue.js';
import { webhookDocs } from './api-doc.js';
import { EVENT_TYPE_VIEWS, eventTypeViewOf } from './event-types.js';
import type { WebhookEndpoints } from './endpoints.js';
import type { EndpointChange } from './repository.js';

interface Registration {
  url: string;
  events: string[];
  description?: string;
}

const URL_FIELD = { type: 'string', minLength: 1, maxLength: 2048 };
const EVENTS_FIELD = { type: 'array', minItems: 1, maxItems: PUBLIC_EVENT_NAMES.length, uniqueItems: true, items: { type: 'string', enum: PUBLIC_EVENT_NAMES } };
const DESCRIPTION_FIELD = { type: 'string', maxLength: 500 };
const STATUSES = ['pending', 'succeeded', 'failed'] as const;

export function registerWebhookRoutes(http: HttpServer, k: RouteKit, endpoints: WebhookEndpoints): void {
  const register = compileSchema<Registration>({
    type: 'object', properties: { url: URL_FIELD, events: EVENTS_FIELD, description: DESCRIPTION_FIELD }, required: ['url', 'events'], additionalProperties: false,
  });
  const change = compileSchema<EndpointChange>({
    type: 'object', properties: { url: URL_FIELD, events: EVENTS_FIELD, description: DESCRIPTION_FIELD, enabled: { type: 'boolean' } },
    minProperties: 1, additionalProperties: false,
  });
  const recover = compileSchema<{ since: string }>({ type: 'object', properties: { since: DATE_TIME }, required: ['since'], additionalProperties: false });
  const noFields = compileSchema<Record<string, never>>({ type: 'object', properties: {}, additionalProperties: false });
  const nothing = (raw: unknown) => raw === undefined || validate(noFields, raw);
  const doc = webhookDocs({ register, change, recover, nothing: noFields });

  const caller = (ctx: RequestContext) => k.principalOf(ctx, ['operator', 'seller']);
  const endpointId = (ctx: RequestContext) => k.idParam(ctx.params[0]!, WEBHOOK_ID, 'webhook endpoint');

  http.route('post', '/v1/webhooks', async (ctx, raw) => {
    const p = await caller(ctx);
    const body = validate(register, raw);
    return k.idempotent(ctx, p, body, async () => ({ status: 201, body: await endpoints.register(body, p) }), shownOnce('secret'));
  }, { doc: doc.register });
  http.route('get', '/v1/webhooks', async (ctx) => {
    const p = await caller(ctx);
    const { limit, after } = k.pageOf(ctx, WEBHOOK_ID);
    return { status: 200, body: await endpoints.list(p, limit, after) };
  }, { doc: doc.list });
  http.route('get', '/v1/webhooks/:id', async (ctx) => {
    const p = await caller(ctx);
    return { status: 200, body: await endpoints.get(endpointId(ctx), p) };
  }, { doc: doc.get });
  http.route('patch', '/v1/webhooks/:id', async (ctx, raw) => {
    const p = await caller(ctx);
    const id = endpointId(ctx);
    return { status: 200, body: await endpoints.change(id, validate(change, raw), p) };
  }, { doc: doc.change });
  http.route('del', '/v1/webhooks/:id', async (ctx) => {
    const p = await caller(ctx);
    await endpoints.remove(endpointId(ctx), p);
    return { status: 204 };
  }, { body: false, doc: doc.remove });
  http.route('post', '/v1/webhooks/:id/rotate-secret', async (ctx, raw) => {
    const p = await caller(ctx);
    const id = endpointId(ctx);
    nothing(raw);
    return { status: 200, body: await endpoints.rotate(id, p) };
  }, { doc: doc.rotate });
  http.route('get', '/v1/webhooks/:id/deliveries', async (ctx) => {
    const p = await caller(ctx);
    const id = endpointId(ctx);
    const q = new URLSearchParams(ctx.query);
    const limit = pageLimit(q);
    const status = q.get('status') ?? undefined;
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) {
      throw AppError.invalid('query:status', 'is invalid', `status must be one of ${STATUSES.join(', ')}`);
    }
    const before = q.get('before') ?? undefined;
    if (before !== undefined && !WEBHOOK_MESSAGE_ID.test(before)) throw AppError.invalid('query:before', 'is invalid', 'before is not a message id this list gave');
    return { status: 200, body: await endpoints.deliveries(id, p, { status: status as (typeof STATUSES)[number] | undefined, limit, before }) };
  }, { doc: doc.deliveries });
  http.route('post', '/v1/webhooks/:id/deliveries/:deliveryId/replay', async (ctx, raw) => {
    const p = await caller(ctx);
    const id = endpointId(ctx);
    const deliveryId = k.idParam(ctx.params[1]!, WEBHOOK_MESSAGE_ID, 'delivery');
    nothing(raw);
    return { status: 202, body: await endpoints.replay(id, deliveryId, p) };
  }, { doc: doc.replay });
  http.route('post', '/v1/webhooks/:id/recover', async (ctx, raw) => {
    const p = await caller(ctx);
    const id = endpointId(ctx);
    const { since } = validate(recover, raw);
    if (!isRealDateTime(since)) throw AppError.invalid('/since', 'is not a real date-time');
    return { status: 202, body: await endpoints.recover(id, new Date(since), p) };
  }, { doc: doc.recover });
  http.route('get', '/v1/event-types', async () => ({ status: 200, body: { items: EVENT_TYPE_VIEWS } }), { doc: doc.eventTypes });
  http.route('get', '/v1/event-types/:name', async (ctx) => {
    const e = eventTypeViewOf(ctx.params[0]!);
    if (!e) throw new AppError('NOT_FOUND', 'no such public event type');
    return { status: 200, body: e };
  }, { doc: doc.eventType });
}
