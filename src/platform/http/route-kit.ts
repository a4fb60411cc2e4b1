/**
 * What every product's routes share: who is calling (a buyer's bearer token,
 * an operator's or seller's API key), path parameters, paging and
 * Idempotency-Key. Routes receive one kit and know nothing of how a token is
 * verified or an answer replayed.
 */
import { AppError } from '../errors.js';
import type { ApiKeys, Principal } from '../auth/api-keys.js';
import type { BuyerTokens } from '../auth/tokens.js';
import type { Pool } from '../db/pool.js';
import { withIdempotency, type StoredAnswer } from '../db/idempotency.js';
import type { Reply, RequestContext } from './server.js';

export interface RouteKit {
  /**
   * The buyer a bearer token names; UNAUTHORIZED otherwise. At once for a
   * buyer this node knows; a promise while it asks whether the id is a user.
   */
  buyerOf(ctx: RequestContext): string | Promise<string>;
  /** The buyer a token names (sent other than in an Authorization header: a WebSocket frame); UNAUTHORIZED otherwise. */
  buyerOfToken(token: string): string | Promise<string>;
  /** The operator or seller an X-Api-Key names, if its role is one of `roles`. */
  principalOf(ctx: RequestContext, roles: Principal['role'][]): Promise<Principal>;
  idempotencyKeyOf(ctx: RequestContext): string | undefined;
  /** A path parameter in its id format; any other value is answered as a missing `what`. */
  idParam(value: string, re: RegExp, what: string): string;
  /** `?limit=&after=`: a page size from 1 to MAX_PAGE and a cursor this list gave. */
  pageOf(ctx: RequestContext, cursor: RegExp): { limit: number; after: string | undefined };
  /** Runs an operator's or seller's creation once per Idempotency-Key (Postgres keeps the answer). */
  idempotent(ctx: RequestContext, p: Principal, body: unknown, run: () => Promise<Reply>, stored?: (a: StoredAnswer) => StoredAnswer): Promise<Reply>;
}

export interface RouteKitDeps {
  pool: Pool;
  tokens: BuyerTokens;
  apiKeys: ApiKeys;
  /** True for a buyer whose tokens must be refused although they verify (a deleted buyer). */
  isRefusedBuyer(buyerId: string): boolean;
  /** Whether a token's subject is a user (src/buyers/known-buyers.ts); absent: every verified subject is taken. */
  knownBuyers?: {
    status(buyerId: string): boolean | undefined;
    lookup(buyerId: string): Promise<boolean>;
  };
}

const noSuchBuyer = () => new AppError('UNAUTHORIZED', 'this token names no buyer', undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
export const MAX_PAGE = 100;
const BEARER = /^Bearer ([A-Za-z0-9_\-.]{1,4096})$/;

export function createRouteKit(d: RouteKitDeps): RouteKit {
  const idempotencyKeyOf = (ctx: RequestContext): string | undefined => {
    if (ctx.idempotencyKey === '') return undefined;
    if (!IDEMPOTENCY_KEY.test(ctx.idempotencyKey)) throw AppError.invalid('header:Idempotency-Key', 'is invalid', 'Idempotency-Key must be 1-200 printable ASCII characters');
    return ctx.idempotencyKey;
  };
  const buyerOfToken = (token: string): string | Promise<string> => {
    const buyerId = d.tokens.verify(token);
    if (d.isRefusedBuyer(buyerId)) throw new AppError('UNAUTHORIZED', 'this buyer was deleted', undefined, { 'WWW-Authenticate': 'Bearer' });
    const known = d.knownBuyers === undefined ? true : d.knownBuyers.status(buyerId);
    if (known === true) return buyerId;
    if (known === false) throw noSuchBuyer();
    return d.knownBuyers!.lookup(buyerId).then((isUser) => {
      if (!isUser) throw noSuchBuyer();
      return buyerId;
    });
  };
  return {
    buyerOf(ctx) {
      const m = BEARER.exec(ctx.authorization);
      if (!m) throw new AppError('UNAUTHORIZED', 'a bearer token is required', undefined, { 'WWW-Authenticate': 'Bearer' });
      return buyerOfToken(m[1]!);
    },
    buyerOfToken,
    async principalOf(ctx, roles) {
      if (ctx.apiKey === '' || ctx.apiKey.length > 200) throw new AppError('UNAUTHORIZED', 'an X-Api-Key header is required');
      const p = await d.apiKeys.lookup(ctx.apiKey);
      if (!p) throw new AppError('UNAUTHORIZED', 'unknown API key');
      if (!roles.includes(p.role)) throw new AppError('FORBIDDEN', `this needs a ${roles.join(' or ')} key`);
      return p;
    },
    idempotencyKeyOf,
    idParam(value, re, what) {
      if (!re.test(value)) throw new AppError('NOT_FOUND', `no such ${what}`);
      return value;
    },
    pageOf(ctx, cursor) {
      const q = new URLSearchParams(ctx.query);
      const limit = pageLimit(q);
      const after = q.get('after') ?? undefined;
      if (after !== undefined && !cursor.test(after)) throw AppError.invalid('query:after', 'is invalid', 'after is not a cursor this list gave');
      return { limit, after };
    },
    async idempotent(ctx, p, body, run, stored) {
      const key = idempotencyKeyOf(ctx);
      if (!key) return run();
      const scope = `${p.role}:${p.userId ?? '-'}:${ctx.method}:${ctx.url}`;
      const answer = await withIdempotency(d.pool, scope, key, body, async () => {
        const r = await run();
        return { status: r.status, body: r.body };
      }, stored);
      return { status: answer.status, body: answer.body, headers: answer.replayed ? { 'Idempotent-Replayed': 'true' } : undefined };
    },
  };
}

/**
 * For `idempotent`'s `stored`: a secret the first answer shows once (a new
 * API key) is kept as null, so a replay names what was made, never the
 * secret, and the secret is never stored in clear.
 */
export const shownOnce = (field: string) => ({ status, body }: StoredAnswer): StoredAnswer => ({
  status, body: { ...(body as Record<string, unknown>), [field]: null },
});

/** `?limit=`: 50 when absent, else an integer from 1 to MAX_PAGE. */
export function pageLimit(q: URLSearchParams): number {
  const raw = q.get('limit') ?? '50';
  const limit = Number(raw);
  if (!/^\d{1,3}$/.test(raw) || limit < 1 || limit > MAX_PAGE) throw AppError.invalid('query:limit', 'out of range', `limit must be an integer from 1 to ${MAX_PAGE}`);
  return limit;
}
