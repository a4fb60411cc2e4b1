/**
 * Buyer tokens: HS256 JWTs, that algorithm only, `exp` and `sub` required.
 * Verified results are cached (fast-jwt's LRU), so a buyer hammering the
 * purchase endpoint is verified once per token, not once per request.
 */
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { AppError } from '../errors.js';
import { USER_ID } from '../ids.js';

export interface BuyerTokens {
  verify(token: string): string;
  issue(userId: string, ttlSeconds?: number): string;
}

export function createBuyerTokens(secret: string, defaultTtlSeconds: number): BuyerTokens {
  const verifier = createVerifier({
    key: secret,
    algorithms: ['HS256'],
    requiredClaims: ['exp', 'sub'],
    cache: 100_000,
    cacheTTL: 60_000,
  });
  const signers = new Map<number, (payload: Record<string, unknown>) => string>();
  const signerFor = (ttl: number) => {
    let s = signers.get(ttl);
    if (!s) {
      s = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttl * 1000 });
      signers.set(ttl, s);
    }
    return s;
  };
  return {
    verify(token) {
      let payload: { sub?: unknown };
      try {
        payload = verifier(token) as { sub?: unknown };
      } catch (err) {
        const detail =
          err instanceof TokenError && err.code === TokenError.codes.expired ? 'token expired' : 'token invalid';
        throw new AppError('UNAUTHORIZED', detail, undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      }
      if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) {
        throw new AppError('UNAUTHORIZED', 'token subject is not a user id', undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      }
      return payload.sub;
    },
    issue(userId, ttlSeconds = defaultTtlSeconds) {
      return signerFor(ttlSeconds)({ sub: userId });
    },
  };
}
