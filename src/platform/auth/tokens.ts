/**
 * Buyer tokens: HS256 JWTs, that algorithm only, `exp` and `sub` required.
 *
 * Verified tokens are remembered, keyed by the token itself, so a buyer
 * hammering the purchase endpoint is verified once per token, not once per
 * request. The cache is ours rather than fast-jwt's: fast-jwt keys its cache
 * by a SHA-256 of the token, computed twice for every token it has not seen
 * (once to look up, once to store), which on the accept path (distinct
 * buyers, every token new) cost more than verifying without a cache. A cache
 * keyed by the token cannot collide, and it only ever holds tokens that
 * verified; failures are not remembered.
 *
 * The cache is an LRU (lru-cache): a buyer still buying keeps their entry,
 * and eviction costs the same however often it has happened. A Map evicting
 * its first key did not: every deletion left a hole at the front of V8's
 * table that the next `keys().next()` walked past, so once a drop had seen
 * more distinct buyers than the cache holds, each new token cost more.
 */
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { LRUCache } from 'lru-cache';
import { AppError } from '../errors.js';
import { USER_ID } from '../ids.js';

export interface BuyerTokens {
  verify(token: string): string;
  issue(userId: string, ttlSeconds?: number): string;
  /** The verified tokens remembered, least recently used first (for tests and operators). */
  cachedTokens(): string[];
}

export interface TokenCacheOptions {
  /** Most tokens remembered; the least recently used is forgotten first. */
  size: number;
  /** Longest a verified token is trusted without verifying it again. */
  ttlMs: number;
  /** Longer tokens are verified every time, so the cache's memory stays bounded. */
  maxTokenLength: number;
}

const DEFAULT_CACHE: TokenCacheOptions = { size: 100_000, ttlMs: 60_000, maxTokenLength: 1024 };

interface Verified {
  sub: string;
  /** The earlier of the token's `exp` and the cache lifetime, in ms. */
  trustedUntil: number;
}

function unauthorized(detail: string): AppError {
  return new AppError('UNAUTHORIZED', detail, undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
}

export function createBuyerTokens(secret: string, defaultTtlSeconds: number, cacheOptions: TokenCacheOptions = DEFAULT_CACHE): BuyerTokens {
  const verifier = createVerifier({ key: secret, algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] });
  const verified = cacheOptions.size > 0 ? new LRUCache<string, Verified>({ max: cacheOptions.size }) : undefined;
  const signers = new Map<number, (payload: Record<string, unknown>) => string>();
  const signerFor = (ttl: number) => {
    let s = signers.get(ttl);
    if (!s) {
      s = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttl * 1000 });
      signers.set(ttl, s);
    }
    return s;
  };
  const remember = (token: string, v: Verified) => {
    if (verified === undefined || token.length > cacheOptions.maxTokenLength) return;
    verified.set(token, v);
  };
  return {
    verify(token) {
      const now = Date.now();
      const known = verified?.get(token);
      if (known !== undefined) {
        if (known.trustedUntil > now) return known.sub;
        verified!.delete(token);
      }
      let payload: { sub?: unknown; exp?: unknown };
      try {
        payload = verifier(token) as { sub?: unknown; exp?: unknown };
      } catch (err) {
        throw unauthorized(err instanceof TokenError && err.code === TokenError.codes.expired ? 'token expired' : 'token invalid');
      }
      if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) throw unauthorized('token subject is not a user id');
      // fast-jwt has checked that exp is a number in the future.
      remember(token, { sub: payload.sub, trustedUntil: Math.min((payload.exp as number) * 1000, now + cacheOptions.ttlMs) });
      return payload.sub;
    },
    issue(userId, ttlSeconds = defaultTtlSeconds) {
      return signerFor(ttlSeconds)({ sub: userId });
    },
    cachedTokens() {
      return verified ? [...verified.rkeys()] : [];
    },
  };
}
