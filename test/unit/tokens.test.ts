/** Buyer tokens: verification, and the cache of verified tokens. */
import t from 'tap';
import { createSigner } from 'fast-jwt';
import { createBuyerTokens } from '../../src/platform/auth/tokens.js';
import { AppError } from '../../src/platform/errors.js';

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

t.test('the cache stays within its size and forgets the least recently used first', async (t) => {
  const tokens = createBuyerTokens(SECRET, 60, { size: 3, ttlMs: 60_000, maxTokenLength: 1024 });
  const id = (n: number) => `usr_${String(n).padStart(12, '0')}`;
  const issued = [1, 2, 3, 4, 5].map((n) => tokens.issue(id(n)));
  for (const tok of issued.slice(0, 3)) tokens.verify(tok);
  t.same(tokens.cachedTokens(), issued.slice(0, 3), 'in the order verified');
  tokens.verify(issued[0]!);
  t.same(tokens.cachedTokens(), [issued[1], issued[2], issued[0]], 'a token used again moves to the back');
  tokens.verify(issued[3]!);
  t.same(tokens.cachedTokens(), [issued[2], issued[0], issued[3]], 'the least recently used went first');
  tokens.verify(issued[4]!);
  t.same(tokens.cachedTokens(), [issued[0], issued[3], issued[4]]);
  t.equal(tokens.verify(issued[1]!), id(2), 'a forgotten token verifies again');
  t.same(tokens.cachedTokens(), [issued[3], issued[4], issued[1]]);
});

t.test('twenty times its size in distinct tokens leave the cache at its bound, holding the newest', async (t) => {
  const size = 1_000;
  const tokens = createBuyerTokens(SECRET, 60, { size, ttlMs: 60_000, maxTokenLength: 1024 });
  const signer = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 60_000 });
  const last: string[] = [];
  for (let n = 0; n < 20_000; n++) {
    const tok = signer({ sub: `usr_${String(n).padStart(12, '0')}` });
    tokens.verify(tok);
    if (n >= 20_000 - size) last.push(tok);
  }
  t.same(tokens.cachedTokens(), last, 'exactly the last `size` tokens, oldest first');
});

t.test('tokens longer than the limit and a zero-size cache are never remembered', async (t) => {
  const none = createBuyerTokens(SECRET, 60, { size: 0, ttlMs: 60_000, maxTokenLength: 1024 });
  t.equal(none.verify(none.issue(USER)), USER);
  t.same(none.cachedTokens(), []);
  const short = createBuyerTokens(SECRET, 60, { size: 10, ttlMs: 60_000, maxTokenLength: 20 });
  t.equal(short.verify(short.issue(USER)), USER);
  t.same(short.cachedTokens(), []);
});
