/**
 * The OpenAPI 3.1 document of every route an HttpServer registered, built
 * from the docs the routes were registered with: request bodies are the
 * schemas their validators compiled, and each operation lists every refusal
 * it can give (those of its kind, added here, and its own), grouped by status
 * with the exact codes. Built once, when first asked for.
 */
import { catalogue, type ErrorCode } from '../errors.js';
import { PROBLEM_CONTENT_TYPE, PROBLEM_SCHEMA, RETRY_AFTER, type ParamDoc, type RouteDoc, type Schema } from './doc.js';
import type { RegisteredRoute } from './server.js';

export interface ApiInfo {
  title: string;
  version: string;
  description?: string;
}

type Json = Record<string, unknown>;

/** The Idempotency-Key header as route-kit.ts checks it. */
const IDEMPOTENCY_KEY: ParamDoc = {
  schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$' },
  description: 'The same key with the same body replays the first answer (`Idempotent-Replayed: true`); with another body: 422.',
};

const SECURITY: Record<NonNullable<RouteDoc['caller']> | 'anyone', { security: Json[]; who: string }> = {
  buyer: { security: [{ buyerToken: [] }], who: 'A buyer (bearer token).' },
  operator: { security: [{ apiKey: [] }], who: 'An operator (X-Api-Key of an operator key).' },
  operatorOrSeller: { security: [{ apiKey: [] }], who: 'An operator or a seller (X-Api-Key); a seller only for its own.' },
  optionalBuyer: { security: [{}, { buyerToken: [] }], who: 'Anyone; parts of it need a buyer\'s bearer token.' },
  anyone: { security: [], who: 'Anyone.' },
};

/** uWS `:param` -> OpenAPI `{param}`. */
export const openApiPath = (pattern: string): string => pattern.replace(/:(\w+)/g, '{$1}');

/**
 * A schema as JSON Schema 2020-12 has it: ajv's `nullable: true` (which the
 * request validators use, as ajv's typed schemas ask) becomes a `null` in
 * `type` (and in `enum`).
 */
export function jsonSchemaOf(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(jsonSchemaOf);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) if (k !== 'nullable') out[k] = jsonSchemaOf(v);
  if ((schema as Json).nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else if (Array.isArray(out.type) && !out.type.includes('null')) out.type = [...out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

/** Every refusal the route can give: those of its kind and its own. */
export function refusalsOf(route: RegisteredRoute, doc: RouteDoc): ErrorCode[] {
  const codes = new Set<ErrorCode>();
  if (doc.caller) {
    codes.add('UNAUTHORIZED');
    // An address past its failed authentications (auth-throttle.ts).
    codes.add('RATE_LIMITED');
  }
  if (doc.caller === 'operator' || doc.caller === 'operatorOrSeller') codes.add('FORBIDDEN');
  if (route.readsBody) for (const c of ['VALIDATION_FAILED', 'MALFORMED_JSON', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as const) codes.add(c);
  if (doc.body || doc.query || doc.headers) codes.add('VALIDATION_FAILED');
  // A path naming nothing (or an id of the wrong form) is answered as a missing thing.
  if (/:\w/.test(route.pattern)) codes.add('NOT_FOUND');
  if (doc.idempotent) for (const c of ['VALIDATION_FAILED', 'IDEMPOTENCY_IN_PROGRESS', 'IDEMPOTENCY_KEY_REUSED'] as const) codes.add(c);
  for (const c of doc.refusals ?? []) codes.add(c);
  codes.add('INTERNAL');
  codes.add('UNAVAILABLE');
  return [...codes];
}

function parameter(name: string, where: 'path' | 'query' | 'header', p: ParamDoc | undefined): Json {
  return {
    name, in: where, required: where === 'path' ? true : p?.required === true,
    ...(p?.description ? { description: p.description } : {}),
    schema: p?.schema ?? { type: 'string' },
  };
}

function operationOf(route: RegisteredRoute, doc: RouteDoc, path: string): Json {
  const who = SECURITY[doc.caller ?? 'anyone'];
  const pathParams = [...route.pattern.matchAll(/:(\w+)/g)].map((m) => parameter(m[1]!, 'path', doc.params?.[m[1]!]));
  const parameters = [
    ...pathParams,
    ...Object.entries(doc.query ?? {}).map(([n, p]) => parameter(n, 'query', p)),
    ...Object.entries(doc.headers ?? {}).map(([n, p]) => parameter(n, 'header', p)),
    ...(doc.idempotent ? [parameter('Idempotency-Key', 'header', IDEMPOTENCY_KEY)] : []),
  ];
  const responses: Json = {};
  for (const [status, r] of Object.entries(doc.responses)) {
    responses[status] = {
      description: r.description,
      ...(r.headers ? { headers: headersOf(r.headers) } : {}),
      ...(r.schema ? { content: { [r.contentType ?? 'application/json']: { schema: r.schema } } } : {}),
    };
  }
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of refusalsOf(route, doc)) {
    const status = catalogue[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const problem = {
      [PROBLEM_CONTENT_TYPE]: {
        schema: { allOf: [{ $ref: '#/components/schemas/Problem' }, { type: 'object', properties: { status: { const: status }, code: { enum: codes } } }] },
      },
    };
    const refusal = codes.map((c) => `\`${c}\`: ${catalogue[c].title}`).join('; ');
    // A status the route also answers itself (a 503 readiness report) carries both bodies.
    const own = responses[String(status)] as { description: string; content?: Json } | undefined;
    responses[String(status)] = {
      ...own,
      description: own ? `${own.description} Or a refusal: ${refusal}` : refusal,
      // Every 429 says when to retry; a 503 says so where it can (a readiness report does not).
      ...(status === 429 || status === 503 ? { headers: headersOf(RETRY_AFTER, status === 429) } : {}),
      content: { ...own?.content, ...problem },
    };
  }
  return {
    operationId: operationIdOf(route.method, path),
    summary: doc.summary,
    description: [doc.description, who.who].filter(Boolean).join('\n\n'),
    tags: doc.tags,
    security: who.security,
    ...(parameters.length ? { parameters } : {}),
    ...(doc.body
      ? { requestBody: { required: doc.optionalBody !== true, content: { 'application/json': { schema: jsonSchemaOf(doc.body.schema) } } } }
      : {}),
    responses,
  };
}

function headersOf(headers: Record<string, ParamDoc>, required?: boolean): Json {
  return Object.fromEntries(Object.entries(headers).map(([n, h]) => [n, {
    ...(h.description ? { description: h.description } : {}),
    ...((required ?? h.required) ? { required: true } : {}),
    schema: h.schema,
  }]));
}

/** `post /v1/sales/{id}/purchases` -> `postSalesIdPurchases`. */
function operationIdOf(method: string, path: string): string {
  const words = path.replace(/^\/v1\//, '/').split(/[^A-Za-z0-9]+/).filter(Boolean);
  return method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

export function buildOpenApi(routes: readonly RegisteredRoute[], info: ApiInfo): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    if (!route.doc) continue;
    const path = openApiPath(route.pattern);
    const item = (paths[path] ??= {});
    if (item[route.method]) continue;
    item[route.method] = operationOf(route, route.doc, path);
  }
  const tags = [...new Set(routes.flatMap((r) => r.doc?.tags ?? []))].map((name) => ({ name }));
  return {
    openapi: '3.1.0',
    info,
    tags,
    paths,
    components: {
      schemas: { Problem: PROBLEM_SCHEMA as Schema },
      securitySchemes: {
        buyerToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'HS256, `exp` and `sub` (the buyer\'s user id) required.' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key', description: 'An operator\'s or a seller\'s API key.' },
      },
    },
  };
}
