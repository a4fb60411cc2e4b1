/**
 * What a route tells of itself where it is registered: who may call it, its
 * path and query parameters, the body it takes (the validator the route
 * validates with, so the document cannot drift from the check) and what it
 * answers, per status. `openapi.ts` builds the OpenAPI document from these;
 * nothing here runs per request.
 *
 * Schemas are JSON Schema 2020-12 (what OpenAPI 3.1 speaks). Request bodies
 * compiled by ajv may still carry ajv's `nullable`; the builder translates it.
 */
import type { ErrorCode } from '../errors.js';

export type Schema = Record<string, unknown>;

/**
 * Who may call: a buyer's bearer token, an operator's (or an operator's or a
 * seller's) X-Api-Key, a buyer's token only for part of the answer, or
 * anyone (absent).
 */
export type Caller = 'buyer' | 'operator' | 'operatorOrSeller' | 'optionalBuyer';

export interface ParamDoc {
  schema: Schema;
  description?: string;
  /** Query parameters and headers (answers' too) only: path parameters are always required. */
  required?: boolean;
}

export interface ResponseDoc {
  description: string;
  /** The body's schema; none: no body. */
  schema?: Schema;
  /** `application/json` unless said. */
  contentType?: string;
  headers?: Record<string, ParamDoc>;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  tags: string[];
  caller?: Caller;
  /** Path parameters by name, in the pattern's order (`:id` -> `id`). */
  params?: Record<string, ParamDoc>;
  query?: Record<string, ParamDoc>;
  headers?: Record<string, ParamDoc>;
  /** The validator the route checks its body with: its schema is the document's. */
  body?: { schema: unknown };
  /** The body may be left out (an action that takes none, or `{}`). */
  optionalBody?: boolean;
  /** The route honours Idempotency-Key (and may answer 409 IDEMPOTENCY_IN_PROGRESS, 422 IDEMPOTENCY_KEY_REUSED). */
  idempotent?: boolean;
  /** Its answers other than refusals, by status. */
  responses: Record<number, ResponseDoc>;
  /**
   * The refusals it gives besides those every route of its kind gives
   * (credentials, body, query, idempotency, 500 and 503: the builder adds
   * those).
   */
  refusals?: ErrorCode[];
}

// --- shared schemas -----------------------------------------------------------

/** An instant as the API answers it: ISO 8601 in UTC (`Date.toISOString`). */
export const INSTANT = { type: 'string', format: 'date-time' } as const;
export const NULLABLE_INSTANT = { type: ['string', 'null'], format: 'date-time' } as const;

/** A non-negative integer count. */
export const COUNT = { type: 'integer', minimum: 0 } as const;

/** An id of the form a RegExp from src/platform/ids.ts checks. */
export const idSchema = (re: RegExp, description?: string): Schema => ({ type: 'string', pattern: re.source, ...(description ? { description } : {}) });

/** An object every one of whose properties is present and no other is. */
export function strictObject(properties: Record<string, Schema>, optional: string[] = []): Schema {
  return { type: 'object', properties, required: Object.keys(properties).filter((k) => !optional.includes(k)), additionalProperties: false };
}

/** `?limit=&after=` (or `before=`) lists: a page of items and the cursor of the next one (null on the last). */
export function pageOf(item: Schema, cursor: Schema = { type: 'string' }, extra: Record<string, Schema> = {}): Schema {
  return strictObject({ items: { type: 'array', items: item }, next: { anyOf: [cursor, { type: 'null' }] }, ...extra });
}

/** `?limit=`: 50 when absent, 1 to MAX_PAGE (route-kit.ts). */
export const LIMIT_PARAM: ParamDoc = { schema: { type: 'integer', minimum: 1, maximum: 100, default: 50 }, description: 'Page size.' };
export const AFTER_PARAM = (what: string, re: RegExp): ParamDoc => ({
  schema: { type: 'string', pattern: re.source }, description: `The \`next\` of the previous page: ${what} after this one.`,
});

/** An RFC 9457 problem as src/platform/errors.ts writes it. */
export const PROBLEM_SCHEMA: Schema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    errors: {
      type: 'array',
      items: strictObject({ path: { type: 'string' }, message: { type: 'string' } }),
      description: 'VALIDATION_FAILED: each field at fault (`/price`, `query:limit`, `header:Idempotency-Key`).',
    },
  },
  required: ['type', 'title', 'status', 'code'],
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** A header every 429 and 503 carries. */
export const RETRY_AFTER: Record<string, ParamDoc> = { 'Retry-After': { schema: { type: 'string' }, description: 'Seconds to wait before retrying.' } };
