/** The webhooks API's contract (OpenAPI): sellers' endpoints, their deliveries, and the public event catalogue. */
import { COUNT, idSchema, INSTANT, LIMIT_PARAM, AFTER_PARAM, NULLABLE_INSTANT, pageOf, strictObject, type RouteDoc, type Schema } from '../platform/http/doc.js';
import { USER_ID, WEBHOOK_ID, WEBHOOK_MESSAGE_ID } from '../platform/ids.js';
import { PUBLIC_EVENT_NAMES } from '../events/catalogue.js';

const TAGS = ['webhooks'];
const EVENT_NAME = { enum: [...PUBLIC_EVENT_NAMES] };

export const ENDPOINT: Schema = strictObject({
  id: idSchema(WEBHOOK_ID),
  url: { type: 'string' },
  description: { type: 'string' },
  events: { type: 'array', items: EVENT_NAME },
  enabled: { type: 'boolean' },
  disabledReason: { enum: ['gone', 'failing', 'owner', null], description: 'Why it is disabled: it answered 410, it failed for days without a success, or its owner disabled it.' },
  disabledAt: NULLABLE_INSTANT,
  failingSince: { ...NULLABLE_INSTANT, description: 'The first failure since its last success.' },
  ownerId: { anyOf: [idSchema(USER_ID), { type: 'null' }], description: 'The seller (null: an operator\'s endpoint, which gets every seller\'s events).' },
  previousSecretExpiresAt: { ...NULLABLE_INSTANT, description: 'After a rotation: until when deliveries are signed with the previous secret too.' },
  createdAt: INSTANT,
  updatedAt: INSTANT,
});

const WITH_SECRET = (nullable: boolean): Schema => strictObject({
  ...(ENDPOINT.properties as Record<string, Schema>),
  secret: nullable
    ? { type: ['string', 'null'], pattern: '^whsec_[A-Za-z0-9+/]{32,}={0,2}$', description: 'Shown this once (null in an idempotent replay).' }
    : { type: 'string', pattern: '^whsec_[A-Za-z0-9+/]{32,}={0,2}$', description: 'Shown this once.' },
});

const ATTEMPT = strictObject({
  at: INSTANT,
  statusCode: { type: ['integer', 'null'], description: 'null: no answer (refused, unreachable, timed out).' },
  latencyMs: COUNT,
  response: { type: 'string', description: 'The first 1 KB of the answer.' },
  error: { type: ['string', 'null'] },
});

export const DELIVERY: Schema = strictObject({
  id: idSchema(WEBHOOK_MESSAGE_ID, 'The message\'s webhook-id, the same in every attempt.'),
  eventId: { type: 'string' },
  eventType: EVENT_NAME,
  status: { enum: ['pending', 'succeeded', 'failed'] },
  createdAt: INSTANT,
  deliveredAt: NULLABLE_INSTANT,
  nextAttemptAt: NULLABLE_INSTANT,
  attempts: { type: 'array', items: ATTEMPT },
});

export const EVENT_TYPE: Schema = strictObject({
  name: EVENT_NAME,
  version: { type: 'integer', minimum: 1 },
  type: { type: 'string', description: 'The CloudEvent `type` its webhooks carry.' },
  description: { type: 'string' },
  highVolume: { type: 'boolean', description: 'Sent only to endpoints that name it.' },
  schema: { type: 'object', description: 'The JSON Schema of its `data` (the webhook\'s `dataschema` points here).' },
});

const ID_PARAM = { id: { schema: idSchema(WEBHOOK_ID), description: 'The endpoint.' } };

export function webhookDocs(bodies: { register: { schema: unknown }; change: { schema: unknown }; recover: { schema: unknown }; nothing: { schema: unknown } }) {
  const docs = {
    register: {
      summary: 'Register a webhook endpoint',
      description: 'A seller\'s endpoint gets the events of its own sales and auctions; an operator\'s, every seller\'s. The URL must be https in production, and resolve to public addresses only. The signing secret is shown this once.',
      tags: TAGS, caller: 'operatorOrSeller', body: bodies.register, idempotent: true,
      responses: { 201: { description: 'The endpoint and its secret.', schema: WITH_SECRET(true) } },
    },
    list: {
      summary: 'Your webhook endpoints (an operator: all), by id', tags: TAGS, caller: 'operatorOrSeller',
      query: { limit: LIMIT_PARAM, after: AFTER_PARAM('endpoints', WEBHOOK_ID) },
      responses: { 200: { description: 'A page of endpoints.', schema: pageOf(ENDPOINT, idSchema(WEBHOOK_ID)) } },
    },
    get: {
      summary: 'One webhook endpoint', tags: TAGS, caller: 'operatorOrSeller', params: ID_PARAM, refusals: ['NOT_FOUND'],
      responses: { 200: { description: 'The endpoint.', schema: ENDPOINT } },
    },
    change: {
      summary: 'Change a webhook endpoint', description: 'Its url, events, description; `enabled: true` re-enables one that was disabled (its pending messages resume).',
      tags: TAGS, caller: 'operatorOrSeller', params: ID_PARAM, body: bodies.change, refusals: ['NOT_FOUND'],
      responses: { 200: { description: 'The endpoint now.', schema: ENDPOINT } },
    },
    remove: {
      summary: 'Delete a webhook endpoint', description: 'With its messages: nothing more is sent to it.', tags: TAGS, caller: 'operatorOrSeller', params: ID_PARAM,
      refusals: ['NOT_FOUND'], responses: { 204: { description: 'Deleted.' } },
    },
    rotate: {
      summary: 'Rotate an endpoint\'s signing secret',
      description: 'A new secret, shown this once; until `previousSecretExpiresAt` (STAMPEDE_WEBHOOK_SECRET_OVERLAP_MS, a day) every delivery carries a signature with each.',
      tags: TAGS, caller: 'operatorOrSeller', params: ID_PARAM, body: bodies.nothing, optionalBody: true, refusals: ['NOT_FOUND'],
      responses: { 200: { description: 'The endpoint and its new secret.', schema: WITH_SECRET(false) } },
    },
    deliveries: {
      summary: 'An endpoint\'s messages, newest first, each with its attempts', tags: TAGS, caller: 'operatorOrSeller', params: ID_PARAM, refusals: ['NOT_FOUND'],
      query: {
        status: { schema: { enum: ['pending', 'succeeded', 'failed'] }, description: 'Only those.' },
        limit: LIMIT_PARAM,
        before: { schema: idSchema(WEBHOOK_MESSAGE_ID), description: 'The `next` of the previous page.' },
      },
      responses: { 200: { description: 'A page of messages.', schema: pageOf(DELIVERY, idSchema(WEBHOOK_MESSAGE_ID)) } },
    },
    replay: {
      summary: 'Send a message again', description: 'Under the same webhook-id (the receiver\'s idempotency key), from the start of the retry schedule.',
      tags: TAGS, caller: 'operatorOrSeller', body: bodies.nothing, optionalBody: true, refusals: ['NOT_FOUND'],
      params: { ...ID_PARAM, deliveryId: { schema: idSchema(WEBHOOK_MESSAGE_ID), description: 'The message.' } },
      responses: { 202: { description: 'It is pending again.', schema: DELIVERY } },
    },
    recover: {
      summary: 'Send again every message that failed since a time', tags: TAGS, caller: 'operatorOrSeller', params: ID_PARAM, body: bodies.recover, refusals: ['NOT_FOUND'],
      responses: { 202: { description: 'How many are pending again.', schema: strictObject({ recovered: COUNT }) } },
    },
    eventTypes: {
      summary: 'The public event types webhooks carry', tags: TAGS,
      responses: { 200: { description: 'Every public type, its version and the JSON Schema of its data.', schema: strictObject({ items: { type: 'array', items: EVENT_TYPE } }) } },
    },
    eventType: {
      summary: 'One public event type', tags: TAGS, refusals: ['NOT_FOUND'],
      params: { name: { schema: EVENT_NAME, description: 'Its public name.' } },
      responses: { 200: { description: 'The type.', schema: EVENT_TYPE } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}
