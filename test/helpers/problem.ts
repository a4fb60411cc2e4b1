/**
 * What "a precise error" means, and the bad credentials every buyer route
 * must refuse; shared by the bad-input tests.
 */
import { newUserId } from '../../src/platform/ids.js';
import type { Test } from 'tap';
import { createSigner } from 'fast-jwt';
import { call, type HttpAnswer, type System } from './system.js';
import type { RawAnswer } from './bad-raw-http.js';

// --- what "a precise error" means -------------------------------------------
export type Answer = HttpAnswer | RawAnswer;
export const contentTypeOf = (a: Answer) => (a.headers instanceof Headers ? a.headers.get('content-type') : a.headers['content-type']);

export function problem(t: Test, a: Answer, status: number, code: string, what: string, errorPath?: string): void {
  const got: Record<string, unknown> = {
    status: a.status,
    contentType: contentTypeOf(a),
    code: typeof a.body === 'object' && a.body !== null ? a.body.code : a.body,
    bodyStatus: typeof a.body === 'object' && a.body !== null ? a.body.status : undefined,
  };
  const want: Record<string, unknown> = { status, contentType: 'application/problem+json', code, bodyStatus: status };
  if (errorPath !== undefined) {
    const paths = Array.isArray(a.body?.errors) ? (a.body.errors as { path: string }[]).map((e) => e.path) : [];
    got.errorsName = paths.includes(errorPath) ? errorPath : paths;
    want.errorsName = errorPath;
  }
  t.same(got, want, `${what} -> ${status} ${code}`);
  const text = JSON.stringify(a.body ?? '');
  if (/\bat .+:\d+:\d+/.test(text) || /"stack"/.test(text)) t.fail(`${what}: the answer carries a stack trace: ${text}`);
}


const nowS = () => Math.floor(Date.now() / 1000);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** Tokens and Authorization headers that must all be refused with 401 (`buyer` is a real buyer, `other` another). */
export function badCredentials(secret: string, buyer: string, other: string, notAUser: string) {
  const sign = (payload: Record<string, unknown>, key = secret, algorithm: 'HS256' | 'HS512' = 'HS256') => createSigner({ key, algorithm })(payload);
  const token = sign({ sub: buyer, exp: nowS() + 3600 });
  const badTokens: [string, string][] = [
    ['expired (exp a minute ago)', sign({ sub: buyer, iat: nowS() - 3600, exp: nowS() - 60 })],
    ['expired (expiresIn from a past clock)', createSigner({ key: secret, expiresIn: 60_000, clockTimestamp: Date.now() - 3_600_000 })({ sub: buyer })],
    ['forged (another secret)', sign({ sub: buyer, exp: nowS() + 3600 }, 'another-secret-that-is-long-enough-0123456789')],
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: buyer, exp: nowS() + 3600 })}.`],
    ['alg none with a stolen signature', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: buyer, exp: nowS() + 3600 })}.${token.split('.')[2]}`],
    ['HS512 with the right secret (algorithm not allowed)', sign({ sub: buyer, exp: nowS() + 3600 }, secret, 'HS512')],
    ['sub is not a user id', sign({ sub: 'admin', exp: nowS() + 3600 })],
    ['sub is a number', sign({ sub: 12345, exp: nowS() + 3600 })],
    ['sub is a sale id', sign({ sub: notAUser, exp: nowS() + 3600 })],
    ['sub is a user id that is no user', sign({ sub: newUserId(), exp: nowS() + 3600 })],
    ['no sub', sign({ exp: nowS() + 3600 })],
    ['no exp', sign({ sub: buyer })],
    ['payload tampered (sub swapped, old signature)', `${token.split('.')[0]}.${b64({ sub: other, exp: nowS() + 3600 })}.${token.split('.')[2]}`],
    ['garbage', 'garbage'],
    ['three empty parts', '..'],
    ['not base64 JSON', 'abc.def.ghi'],
  ];
  const badAuthorizations: [string, string | undefined][] = [
    ['missing Authorization', undefined],
    ['Bearer garbage', 'Bearer garbage'],
    ['Bearer with nothing', 'Bearer '],
    ['lower-case scheme and a valid token', `bearer ${token}`],
    ['Basic scheme', `Basic ${Buffer.from('user:pass').toString('base64')}`],
    ['the token without a scheme', token],
    ['a token over 4096 characters', `Bearer ${'a'.repeat(5000)}`],
    ...badTokens.map(([what, tok]): [string, string] => [`Bearer ${what}`, `Bearer ${tok}`]),
  ];
  return { badTokens, badAuthorizations };
}

/** Headers that must not pass for an operator's or seller's X-Api-Key (`token` a buyer's valid JWT): each is 401. */
export function badApiKeys(operatorKey: string, token: string): [string, Record<string, string>][] {
  return [
    ['no X-Api-Key', {}],
    ['an empty X-Api-Key', { 'x-api-key': '' }],
    ['a wrong X-Api-Key', { 'x-api-key': 'wrong-key' }],
    ['the operator key with a trailing character', { 'x-api-key': `${operatorKey}x` }],
    ['the operator key upper-cased', { 'x-api-key': operatorKey.toUpperCase() }],
    ['an X-Api-Key over 200 characters', { 'x-api-key': 'k'.repeat(201) }],
    ['a buyer JWT as Authorization', { authorization: `Bearer ${token}` }],
    ['a buyer JWT as X-Api-Key', { 'x-api-key': token }],
    ['the operator key as a bearer token', { authorization: `Bearer ${operatorKey}` }],
  ];
}

/**
 * Sends one request with each of these credentials: an Authorization header
 * (none where undefined) or whole headers (badApiKeys). Each must be 401 UNAUTHORIZED.
 */
export async function refusesEach(
  t: Test, credentials: [string, string | undefined | Record<string, string>][], send: (headers: Record<string, string>) => Promise<Answer>, what?: string,
): Promise<void> {
  for (const [how, credential] of credentials) {
    const headers = credential === undefined ? {} : typeof credential === 'string' ? { authorization: credential } : credential;
    problem(t, await send(headers), 401, 'UNAUTHORIZED', what === undefined ? how : `${what} with ${how}`);
  }
}

/** Runs `bad`, then proves no API key was created or revoked and the api still answers. */
export async function keysUnchanged(t: Test, sys: System, bad: () => Promise<void>): Promise<void> {
  const snapshot = async () => (await sys.pool.query('SELECT id, key_hash, role, user_id, label, revoked_at FROM api_keys ORDER BY id')).rows;
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'no key created or revoked');
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'still up');
}
