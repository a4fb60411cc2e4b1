/** The operators' API contract (OpenAPI): what each route of routes.ts takes and answers. */
import { AFTER_PARAM, COUNT, idSchema, INSTANT, LIMIT_PARAM, NULLABLE_INSTANT, pageOf, strictObject, type RouteDoc, type Schema } from '../platform/http/doc.js';
import { API_KEY_ID, USER_ID } from '../platform/ids.js';
import { CONCERN_NAMES } from './dead-letters.js';

const TAGS = ['operators'];
const DEAD_LETTER_ID = { type: 'string', pattern: '^[1-9]\\d{0,15}$' };
const QUEUE_PARAM = { schema: { enum: [...CONCERN_NAMES] }, description: 'The concern whose dead letters these are.' };
const DEAD_LETTER_PARAMS = { queue: QUEUE_PARAM, id: { schema: DEAD_LETTER_ID, description: 'The dead letter.' } };

const QUEUES: Schema = strictObject({
  queues: {
    type: 'array',
    items: strictObject({ queue: { type: 'string' }, concern: { type: 'string' }, kind: { enum: ['main', 'retry', 'dead-letter'] }, messages: COUNT, consumers: COUNT }),
  },
  deadLetters: { ...COUNT, description: 'Messages in every dead-letter queue.' },
  outboxes: {
    type: 'array',
    items: strictObject({
      stream: { type: 'string' }, length: COUNT, unread: COUNT, pending: COUNT,
      oldestAgeMs: { ...COUNT, description: 'Age of the oldest entry not yet relayed; 0 when none waits.' },
    }),
  },
  outboxBacklog: { ...COUNT, description: 'Outbox entries not yet relayed, in all.' },
});

const DEAD_LETTER: Schema = strictObject({
  id: { type: 'integer', minimum: 1 },
  queue: { type: 'string' },
  messageId: { type: ['string', 'null'] },
  type: { type: ['string', 'null'] },
  lastError: { type: ['string', 'null'] },
  deadLetteredAt: INSTANT,
  replayedAt: NULLABLE_INSTANT,
  headers: { type: 'object' },
  body: { description: 'The message body: as JSON where it is JSON, else as text.' },
});

export const API_KEY_VIEW: Schema = strictObject({
  id: idSchema(API_KEY_ID),
  role: { enum: ['operator', 'seller'] },
  userId: { anyOf: [idSchema(USER_ID), { type: 'null' }] },
  label: { type: 'string' },
  fingerprint: { type: 'string', pattern: '^[0-9a-f]{8}$', description: 'The first 8 hex digits of the key\'s SHA-256.' },
  createdAt: INSTANT,
  revokedAt: NULLABLE_INSTANT,
});

const counted = (field: string, description: string): Schema => strictObject({ [field]: { ...COUNT, description } });

export function opsDocs(bodies: { purge: { schema: unknown }; key: { schema: unknown } }) {
  const docs = {
    queues: {
      summary: 'Queues and outboxes', tags: TAGS, caller: 'operator',
      responses: { 200: { description: 'Per queue: depth and consumers; per outbox: length, unread, pending, lag.', schema: QUEUES } },
    },
    deadLetters: {
      summary: 'Dead letters per queue', tags: TAGS, caller: 'operator',
      responses: {
        200: {
          description: 'Per concern: waiting, replayed, the oldest waiting, and those still in the `.dlq`.',
          schema: strictObject({
            queues: {
              type: 'array',
              items: strictObject({ queue: { enum: [...CONCERN_NAMES] }, waiting: COUNT, replayed: COUNT, oldestWaiting: NULLABLE_INSTANT, unarchived: COUNT }),
            },
          }),
        },
      },
    },
    deadLetterList: {
      summary: 'A queue\'s dead letters, newest first', tags: TAGS, caller: 'operator', params: { queue: QUEUE_PARAM },
      query: {
        limit: LIMIT_PARAM, after: AFTER_PARAM('dead letters', /^[1-9]\d{0,15}$/),
        status: { schema: { enum: ['waiting', 'all'], default: 'waiting' }, description: '`all`: replayed ones too.' },
      },
      responses: { 200: { description: 'A page of dead letters.', schema: pageOf(DEAD_LETTER, DEAD_LETTER_ID) } },
    },
    deadLetter: {
      summary: 'One dead letter', tags: TAGS, caller: 'operator', params: DEAD_LETTER_PARAMS,
      responses: { 200: { description: 'The dead letter.', schema: DEAD_LETTER } },
    },
    replayOne: {
      summary: 'Replay one dead letter', description: 'Published back to its queue, confirmed, once.', tags: TAGS, caller: 'operator', params: DEAD_LETTER_PARAMS,
      refusals: ['CONFLICT'],
      responses: { 200: { description: 'Replayed.', schema: strictObject({ replayed: { const: 1 } }) } },
    },
    replayAll: {
      summary: 'Replay every waiting dead letter of a queue', tags: TAGS, caller: 'operator', params: { queue: QUEUE_PARAM },
      responses: { 200: { description: 'How many were replayed.', schema: counted('replayed', 'Dead letters replayed.') } },
    },
    purge: {
      summary: 'Delete a queue\'s waiting dead letters', tags: TAGS, caller: 'operator', params: { queue: QUEUE_PARAM }, body: bodies.purge,
      responses: { 200: { description: 'How many were deleted.', schema: counted('purged', 'Dead letters deleted.') } },
    },
    createKey: {
      summary: 'Create an API key', description: 'The key is shown this once (stored hashed); a replay shows `apiKey: null`.',
      tags: TAGS, caller: 'operator', body: bodies.key, idempotent: true,
      responses: {
        201: {
          description: 'The key.',
          schema: strictObject({ ...(API_KEY_VIEW.properties as Record<string, Schema>), apiKey: { type: ['string', 'null'] } }),
        },
      },
    },
    listKeys: {
      summary: 'Every API key, revoked ones too, oldest first', tags: TAGS, caller: 'operator',
      query: { limit: LIMIT_PARAM, after: AFTER_PARAM('keys', API_KEY_ID) },
      responses: { 200: { description: 'A page of keys (never a key or its hash).', schema: pageOf(API_KEY_VIEW, idSchema(API_KEY_ID)) } },
    },
    revokeKey: {
      summary: 'Revoke an API key', description: 'On every api node within a second. Not the last active operator key (409).',
      tags: TAGS, caller: 'operator', params: { id: { schema: idSchema(API_KEY_ID), description: 'The key\'s id.' } }, refusals: ['CONFLICT'],
      responses: { 204: { description: 'Revoked (also when it was already).' } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}
