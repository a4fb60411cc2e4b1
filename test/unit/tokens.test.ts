/** Buyer tokens: verification, and the cache of verified tokens. */
import t from 'tap';
import { createSigner } from 'fast-jwt';
import { createBuyerTokens } from '../../src/auth/tokens.js';
import { AppError } from '../../src/errors.js';

const SECRET = 'unit-test-secret-unit-test-secret-0123456789';
const USER = 'usr_0123456789ab';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? `${err.code}: ${err.detail}` : String(err);
  }
  return undefined;
};

t.test('verifies issued tokens, again and again', async (t) => {
  const tokens = createBuyerTokens(SECRET, 60);
  const token = tokens.issue(USER);
  t.equal(tokens.verify(token), USER);
  t.equal(tokens.verify(token), USER, 'from the cache');
});

t.test('refuses forged, foreign, expired and subject-less tokens, cached or not', async (t) => {
  const tokens = createBuyerTokens(SECRET, 60);
  const good = tokens.issue(USER);
  t.equal(tokens.verify(good), USER);
  t.equal(code(() => tokens.verify(good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA'))), 'UNAUTHORIZED: token invalid', 'tampered signature');
  t.equal(code(() => tokens.verify(createBuyerTokens('another-secret-another-secret-0123456789', 60).issue(USER))), 'UNAUTHORIZED: token invalid', 'other key');
  const expired = createSigner({ key: SECRET, algorithm: 'HS256' })({ sub: USER, exp: Math.floor(Date.now() / 1000) - 10 });
  t.equal(code(() => tokens.verify(expired)), 'UNAUTHORIZED: token expired');
  const noSub = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 60_000 })({ name: 'x' });
  t.match(code(() => tokens.verify(noSub)), /^UNAUTHORIZED/);
  const badSub = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'root' });
  t.equal(code(() => tokens.verify(badSub)), 'UNAUTHORIZED: token subject is not a user id');
});

t.test('a cached token is not trusted past its exp', async (t) => {
  const tokens = createBuyerTokens(SECRET, 60);
  const token = createSigner({ key: SECRET, algorithm: 'HS256' })({ sub: USER, exp: Math.floor(Date.now() / 1000) + 1 });
  t.equal(tokens.verify(token), USER);
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(code(() => tokens.verify(token)), 'UNAUTHORIZED: token expired');
});

t.test('the cache stays within its size and forgets the oldest first', async (t) => {
  const tokens = createBuyerTokens(SECRET, 60, { size: 2, ttlMs: 60_000, maxTokenLength: 1024 });
  const ids = ['usr_000000000001', 'usr_000000000002', 'usr_000000000003'];
  for (const id of ids) t.equal(tokens.verify(tokens.issue(id)), id);
  t.equal(tokens.verify(tokens.issue(ids[0]!)), ids[0], 'a forgotten token verifies again');
});
