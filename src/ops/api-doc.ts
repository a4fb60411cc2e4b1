/** The operators' API contract (OpenAPI): what each route of routes.ts takes and answers. */
import { AFTER_PARAM, COUNT, idSchema, INSTANT, LIMIT_PARAM, NULLABLE_INSTANT, pageOf, strictObject, type RouteDoc, type Schema } from '../platform/http/doc.js';
import { API_KEY_ID, USER_ID } from '../platform/ids.js';
import { CONCERN_NAMES } from './dead-letters.js';

const TAGS = ['operators'];
const DEAD_LETTER_ID = { type: 'string', pattern: '^[1-9]\\d{0,15}$' };
const QUEUE_PARAM = { schema: { enum: [...CONCERN_NAMES] }, description: 'The concern whose dead letters these are.' };
const DEAD_LETTER_PARAMS = { queue: QUEUE_PARAM, id: { schema: DEAD_LETTER_ID, description: 'The dead letter.' } };

const QUEUE_STAT: Schema = strictObject({ queue: { type: 'string' }, concern: { type: 'string' }, kind: { enum: ['main', 'retry', 'dead-letter'] }, messages: COUNT, consumers: COUNT });
const OUTBOXES: Schema = {
  type: 'array',
  items: strictObject({
    stream: { type: 'string', description: 'A Redis outbox stream (one per sale and auction), or `postgres:event_outbox`: the events Postgres changes announce (sale.created, sale.updated, sale.closed), rows waiting for the broker.' }, length: COUNT, unread: COUNT, pending: COUNT,
    oldestAgeMs: { ...COUNT, description: 'Age of the oldest entry not yet relayed; 0 when none waits.' },
  }),
};

const QUEUES: Schema = strictObject({
  queues: { type: 'array', items: QUEUE_STAT },
  deadLetters: { ...COUNT, description: 'Messages in every dead-letter queue.' },
  outboxes: OUTBOXES,
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

// --- a seller's own keys ----------------------------------------------------------

const SELLER_PARAM = { schema: idSchema(USER_ID), description: 'The seller.' };

export function sellerKeyDocs(bodies: { key: { schema: unknown } }) {
  const docs = {
    list: {
      summary: 'A seller\'s API keys, revoked ones too, oldest first', tags: ['sellers'], caller: 'operatorOrSeller',
      description: 'A seller with one of its own keys; an operator for any seller. Another seller is answered 404.',
      params: { id: SELLER_PARAM }, query: { limit: LIMIT_PARAM, after: AFTER_PARAM('keys', API_KEY_ID) },
      responses: { 200: { description: 'A page of the seller\'s keys (never a key or its hash).', schema: pageOf(API_KEY_VIEW, idSchema(API_KEY_ID)) } },
    },
    create: {
      summary: 'Create an API key for a seller', description: 'The key is shown this once (stored hashed); a replay shows `apiKey: null`.',
      tags: ['sellers'], caller: 'operatorOrSeller', params: { id: SELLER_PARAM }, body: bodies.key, idempotent: true,
      responses: {
        201: {
          description: 'The key.',
          schema: strictObject({ ...(API_KEY_VIEW.properties as Record<string, Schema>), apiKey: { type: ['string', 'null'] } }),
        },
      },
    },
    revoke: {
      summary: 'Revoke one of a seller\'s API keys', description: 'On every api node within a second; also the key the seller calls with.',
      tags: ['sellers'], caller: 'operatorOrSeller',
      params: { id: SELLER_PARAM, keyId: { schema: idSchema(API_KEY_ID), description: 'The key\'s id.' } },
      responses: { 204: { description: 'Revoked (also when it was already).' } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}

// --- the live board and reconciliation -------------------------------------------

/** Decisions by outcome name (`Accepted`, `SoldOut`, …): a count, or per second. */
const BY_OUTCOME = (unit: Schema, description: string): Schema => ({ type: 'object', additionalProperties: unit, description });
const RATE = { type: 'number', minimum: 0 } as const;

const BOARD_SALE: Schema = strictObject({
  id: { type: 'string' }, name: { type: 'string' }, currency: { type: 'string' }, unitPrice: COUNT, status: { type: 'string' },
  startsAt: INSTANT, endsAt: INSTANT, stock: COUNT, available: COUNT, reserved: COUNT, sold: COUNT,
  decisions: BY_OUTCOME(COUNT, 'Purchase decisions so far, every api node\'s, by outcome.'),
  perSecond: BY_OUTCOME(RATE, 'The same per second over the last interval.'),
  unitsPerSecond: { ...RATE, description: 'Units reserved or sold per second over the last interval.' },
  soldOutInSeconds: { type: ['number', 'null'], minimum: 0, description: 'At that rate, seconds until none is left; null when not selling or sold out.' },
});

const BOARD_AUCTION: Schema = strictObject({
  id: { type: 'string' }, title: { type: 'string' }, currency: { type: 'string' }, status: { type: 'string' },
  price: { type: ['integer', 'null'], minimum: 0 }, nextMinimumBid: COUNT, bidCount: COUNT, bidsPerSecond: RATE,
  decisions: BY_OUTCOME(COUNT, 'Bid decisions so far, every api node\'s, by outcome.'),
  leader: { type: ['string', 'null'], description: 'The leader\'s anonymous handle.' },
  endsAt: INSTANT,
  extendedSeconds: { ...COUNT, description: 'How far soft closes moved the end past the one scheduled.' },
});

const BOARD_ROLE: Schema = strictObject({
  role: { type: 'string' }, instance: { type: 'string' }, host: { type: 'string' }, pid: COUNT,
  startedAt: { ...COUNT, description: 'Epoch milliseconds.' }, beatAt: { ...COUNT, description: 'Epoch milliseconds of its last beat.' },
  everyMs: COUNT, metricsUrl: { type: 'string' },
  silentMs: { type: 'integer', description: 'Milliseconds since its last beat, as the answering node\'s clock sees it.' },
  healthy: { type: 'boolean', description: 'False after three missed beats.' },
}, ['metricsUrl']);

const CHECK_NAMES = ['sales', 'auctions', 'wallets', 'stuck'];
const CHECK_COUNTS = { checked: COUNT, found: COUNT, repaired: COUNT };

const RECONCILIATION_SUMMARY: Schema = strictObject({
  id: { type: 'integer', minimum: 1 }, trigger: { enum: ['cli', 'schedule', 'api'] }, finishedAt: INSTANT, durationMs: COUNT,
  findings: COUNT, repaired: COUNT, unrepaired: COUNT,
  checks: { type: 'object', additionalProperties: strictObject({ ...CHECK_COUNTS, skipped: COUNT }) },
});

const BOARD: Schema = strictObject({
  at: INSTANT,
  sales: { type: 'array', items: BOARD_SALE, description: 'The open sales that started last (at most 50).' },
  auctions: { type: 'array', items: BOARD_AUCTION, description: 'The open auctions that started last (at most 50).' },
  queues: {
    type: 'array',
    items: strictObject({
      ...(QUEUE_STAT.properties as Record<string, Schema>),
      inPerSecond: { type: ['number', 'null'], minimum: 0, description: 'Published per second (RabbitMQ\'s management API); null when it cannot be read.' },
      outPerSecond: { type: ['number', 'null'], minimum: 0, description: 'Delivered per second; null when it cannot be read.' },
    }),
  },
  outboxes: OUTBOXES,
  outboxBacklog: COUNT,
  deadLetters: strictObject({
    total: COUNT,
    queues: { type: 'array', items: strictObject({ queue: { enum: [...CONCERN_NAMES] }, waiting: COUNT, unarchived: COUNT, oldestWaiting: NULLABLE_INSTANT }) },
  }),
  roles: { type: 'array', items: BOARD_ROLE },
  reconciliation: { anyOf: [RECONCILIATION_SUMMARY, { type: 'null' }], description: 'The latest run in short; null before the first.' },
  problems: { type: 'array', items: { type: 'string' }, description: 'Parts that could not be read this time, and why (the rest is shown).' },
});

const FINDING: Schema = strictObject({
  check: { enum: CHECK_NAMES },
  subject: { type: 'string', description: 'A sale, auction or purchase id, or a wallet as `<userId>/<currency>`.' },
  code: { type: 'string', description: 'Stable: `sold_differs`, `state_differs`, `purchase_stuck`, …' },
  message: { type: 'string' },
  details: { type: 'object', description: 'The numbers compared, as each side holds them.' },
  repaired: { type: 'boolean' },
  action: { type: 'string', description: 'What the repair did, or why there was none.' },
});

const RECONCILIATION_REPORT: Schema = strictObject({
  id: { type: 'integer', minimum: 1 }, trigger: { enum: ['cli', 'schedule', 'api'] }, startedAt: INSTANT, finishedAt: INSTANT, durationMs: COUNT,
  findings: COUNT, repaired: COUNT, unrepaired: { ...COUNT, description: 'Findings left as they were: what an operator must look at.' },
  checks: {
    type: 'object',
    properties: Object.fromEntries(CHECK_NAMES.map((name) => [name, strictObject({
      ...CHECK_COUNTS,
      findings: { type: 'array', items: FINDING, description: 'At most 200 (`found` counts them all).' },
      skipped: { type: 'array', items: strictObject({ subject: { type: 'string' }, why: { type: 'string' } }) },
    })])),
    required: CHECK_NAMES,
    additionalProperties: false,
  },
});

export const boardDocs = {
  snapshot: {
    summary: 'The live board, once', description: 'What GET /ops shows: open sales and auctions, queues, outboxes, dead letters, roles, the latest reconciliation.',
    tags: TAGS, caller: 'operator',
    responses: { 200: { description: 'One snapshot.', schema: BOARD } },
  },
  stream: {
    summary: 'The live board as Server-Sent Events',
    description: 'One `data:` snapshot (as GET /v1/ops/board answers) every STAMPEDE_OPS_BOARD_MS. The key is checked again before each; a revoked key\'s stream ends.',
    tags: TAGS, caller: 'operator',
    responses: { 200: { description: 'The event stream.', contentType: 'text/event-stream', schema: { type: 'string' } } },
  },
} satisfies Record<string, RouteDoc>;

export const reconciliationDocs = {
  latest: {
    summary: 'The latest reconciliation report', description: 'Redis against Postgres, wallets against their ledger, purchases stuck. 404 before the first run.',
    tags: TAGS, caller: 'operator', refusals: ['NOT_FOUND'],
    responses: { 200: { description: 'The report with its findings.', schema: RECONCILIATION_REPORT } },
  },
  run: {
    summary: 'Run a reconciliation now', description: 'Answers when the run is done. 409 while another run holds the lock.',
    tags: TAGS, caller: 'operator', idempotent: true, refusals: ['CONFLICT'],
    responses: { 201: { description: 'The run\'s report.', schema: RECONCILIATION_REPORT } },
  },
} satisfies Record<string, RouteDoc>;
