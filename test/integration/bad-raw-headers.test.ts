/**
 * Requests uWebSockets.js 20.30 will not parse: more headers than it holds,
 * a control character in a header value. It answers them nothing and closes
 * their connections when its idle timeout ends (this build gives a server
 * no hook to answer 431 or 400 first), so what is tested is what the README
 * promises: such connections, many at once, neither stop the process nor
 * delay anyone else, and the server closes every one of them. A huge
 * Authorization header is parsed, and refused like any bad token.
 */
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { boot, call, waitFor } from '../helpers/system.js';

const sys = await boot(t);
const port = sys.api!.port;
const sale = await sys.createSale({ stock: 100, perBuyerLimit: 1 });
const buyers = await sys.createBuyers(3);

interface Held { socket: Socket; answer: string; closed: boolean }

/** Opens a connection, writes `head` (and the blank line), and keeps what comes back. */
function hold(head: string): Held {
  const held: Held = { socket: connect(port, '127.0.0.1'), answer: '', closed: false };
  held.socket.setEncoding('utf8');
  held.socket.on('data', (d: string) => (held.answer += d));
  held.socket.on('error', () => undefined);
  held.socket.on('close', () => (held.closed = true));
  held.socket.write(`${head}\r\n\r\n`);
  return held;
}

const line = (path: string) => `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1`;
const KINDS: [string, string][] = [
  ['60 headers', `${line('/healthz')}\r\n${Array.from({ length: 60 }, (_, i) => `x-h${i}: v`).join('\r\n')}`],
  ['a control character in a header value', `${line('/healthz')}\r\nx-note: a\u0001b`],
];

t.test('requests the parser refuses: the process and other clients go on, and their connections are closed', async (t) => {
  const held = KINDS.flatMap(([kind, head]) => Array.from({ length: 25 }, () => ({ kind, h: hold(head) })));
  // While all 50 are open, everyone else is served.
  const health = await call(`${sys.url}/healthz`);
  t.equal(health.status, 200, 'GET /healthz answered meanwhile');
  const bought = await sys.purchase(buyers[0]!, sale.id);
  t.equal(bought.status, 202, 'a purchase accepted meanwhile');
  await waitFor('the server to close every refused connection', async () => held.every(({ h }) => h.closed), 30_000);
  for (const [kind] of KINDS) {
    const mine = held.filter((x) => x.kind === kind);
    t.ok(mine.every(({ h }) => !/^HTTP\/1\.1 [25]/.test(h.answer)), `${kind}: never a 2xx or a 5xx (${mine.filter(({ h }) => h.answer !== '').length} of ${mine.length} got an answer)`);
  }
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'the api still answers afterwards');
  t.equal((await sys.purchase(buyers[1]!, sale.id)).status, 202, 'and still sells');
});

t.test('a 100 KB Authorization header is read and refused as a bad token', async (t) => {
  const h = hold(`POST /v1/sales/${sale.id}/purchases HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${'a'.repeat(100_000)}\r\ncontent-type: application/json\r\ncontent-length: 14\r\nconnection: close`);
  h.socket.write('{"quantity":1}');
  await waitFor('its answer and close', async () => h.closed, 30_000);
  t.match(h.answer, /^HTTP\/1\.1 401 /, '401');
  t.match(h.answer, /"code":"UNAUTHORIZED"/);
  t.equal((await sys.purchase(buyers[2]!, sale.id)).status, 202, 'a purchase is accepted after it');
});
