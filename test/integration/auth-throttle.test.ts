/**
 * Failed authentication is throttled per source address: past the limit of
 * 401s in a window, that address's requests with credentials (even good
 * ones) get 429 with Retry-After until the window ends, while another
 * address, and requests without credentials, are answered as usual. Every
 * request goes over loopback; 127.0.0.2 is a second source address.
 */
import t from 'tap';
import { request } from 'node:http';
import { boot } from '../helpers/system.js';
import { problem } from '../helpers/problem.js';

const LIMIT = 5;
const WINDOW_MS = 3_000;
const sys = await boot(t, { env: { STAMPEDE_AUTH_FAILURE_LIMIT: String(LIMIT), STAMPEDE_AUTH_FAILURE_WINDOW_MS: String(WINDOW_MS) } });
const port = sys.api!.port;
const [buyer] = await sys.createBuyers(1);

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: any }

/** GET `path` from the source address `from`, with `headers`. */
function get(from: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: from, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) });
      });
    });
    req.on('error', reject).end();
  });
}
const asProblem = (a: Answer) => ({ ...a, headers: new Headers(Object.entries(a.headers).map(([k, v]) => [k, String(v)] as [string, string])) });

const goodKey = { 'x-api-key': 'test-operator-key' };
const badKey = { 'x-api-key': 'not-a-key' };
const goodToken = { authorization: `Bearer ${sys.token(buyer!)}` };
const forged = { authorization: `Bearer ${sys.token(buyer!).slice(0, -2)}xx` };

t.test('past the limit, an address is refused 429 with Retry-After, good credentials too', async (t) => {
  t.equal((await get('127.0.0.1', '/v1/ops/keys?limit=1', goodKey)).status, 200, 'a good key before any failure');
  for (let i = 0; i < LIMIT; i++) {
    const bad = i % 2 === 0 ? await get('127.0.0.1', '/v1/ops/keys?limit=1', badKey) : await get('127.0.0.1', '/v1/wallet', forged);
    problem(t, asProblem(bad), 401, 'UNAUTHORIZED', `failure ${i + 1} of ${LIMIT} (a wrong key, a forged token)`);
  }
  t.equal((await get('127.0.0.1', '/v1/ops/keys?limit=1', goodKey)).status, 200, 'at the limit, a good key still works');
  problem(t, asProblem(await get('127.0.0.1', '/v1/ops/keys?limit=1', badKey)), 401, 'UNAUTHORIZED', 'the failure past the limit');

  for (const [what, path, headers] of [
    ['a good operator key', '/v1/ops/keys?limit=1', goodKey],
    ['a good buyer token', '/v1/wallet', goodToken],
    ['a wrong key', '/v1/ops/keys?limit=1', badKey],
  ] as const) {
    const refused = await get('127.0.0.1', path, headers);
    problem(t, asProblem(refused), 429, 'RATE_LIMITED', `then ${what}`);
    const wait = Number(refused.headers['retry-after']);
    t.ok(wait >= 1 && wait <= WINDOW_MS / 1000, `Retry-After ${refused.headers['retry-after']} s: the rest of the window`);
  }

  t.equal((await get('127.0.0.1', '/v1/sales?limit=1')).status, 200, 'a request without credentials to a public route is answered');
  t.equal((await get('127.0.0.2', '/v1/ops/keys?limit=1', goodKey)).status, 200, 'another address with a good key is answered');
  t.equal((await get('127.0.0.2', '/v1/wallet', goodToken)).status, 200, 'and with a good token');
  problem(t, asProblem(await get('127.0.0.2', '/v1/ops/keys?limit=1', badKey)), 401, 'UNAUTHORIZED', 'another address\'s first failure is a 401');

  // The window ends: the address may try again.
  const start = Date.now();
  let back: Answer;
  do {
    await new Promise((r) => setTimeout(r, 250));
    back = await get('127.0.0.1', '/v1/ops/keys?limit=1', goodKey);
  } while (back.status === 429 && Date.now() - start < WINDOW_MS * 3);
  t.equal(back.status, 200, 'after the window a good key is answered again');
  problem(t, asProblem(await get('127.0.0.1', '/v1/ops/keys?limit=1', badKey)), 401, 'UNAUTHORIZED', 'and a failure counts afresh');
});
