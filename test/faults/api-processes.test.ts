/**
 * STAMPEDE_API_PROCESSES=2 under `stampede all`: two api processes on one
 * port, the kernel spreading new connections across them. Both answer
 * (each counts requests on its own metrics port), a sale sold across them
 * is never oversold and each one refuses the sold-out sale, and when one is
 * killed the other keeps answering while the supervisor starts it again.
 */
import t from 'tap';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { boot, waitFor } from '../helpers/system.js';
import { startSupervisor } from '../helpers/supervisor.js';

/** A port nothing listens on, with the next one free too (the second api's metrics port). */
async function freePortPair(): Promise<number> {
  const listen = (port: number) => new Promise<number | undefined>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const bound = (s.address() as { port: number }).port;
      s.close(() => resolve(bound));
    });
  });
  for (;;) {
    const port = await listen(0);
    if (port && port < 65_535 && (await listen(port + 1))) return port;
  }
}

/** One request on a connection of its own (no keep-alive), so each may reach either process. */
function once(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

/** Requests an api process has counted, from its own metrics port. */
async function counted(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('stampede_http_requests_total{')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

const sys = await boot(t, { api: false });
const httpPort = await freePortPair();
const metricsPort = await freePortPair();
const buyers = await sys.createBuyers(50);
const sale = await sys.createSale({ stock: 5, perBuyerLimit: 1 });

const out = startSupervisor(t, { STAMPEDE_API_PROCESSES: '2', STAMPEDE_HTTP_PORT: String(httpPort), STAMPEDE_API_METRICS_PORT: String(metricsPort) });
const listening = () => [...out.text.matchAll(/\{[^\n]*"msg":"api listening"[^\n]*\}/g)].map((m) => JSON.parse(m[0]) as { pid: number; port: number; process: number });

t.test('two api processes share the port; each answers and counts on its own metrics port', async (t) => {
  const apis = await waitFor('two api processes listening', async () => (listening().length >= 2 ? listening() : undefined), 90_000)
    .catch((err: Error) => { throw new Error(`${err.message}\nsupervisor log:\n${out.text.slice(-3000)}`); });
  t.same(apis.map((a) => a.port), [httpPort, httpPort], 'both on the one port');
  t.same(apis.map((a) => a.process).sort(), [0, 1], 'each told its index');
  t.not(apis[0]!.pid, apis[1]!.pid, 'two processes');

  const answers = await Promise.all(Array.from({ length: 60 }, () => once(httpPort, 'GET', '/healthz')));
  t.same([...new Set(answers.map((a) => a.status))], [200], 'every request answered');
  const [first, second] = [await counted(metricsPort), await counted(metricsPort + 1)];
  t.ok(first > 0 && second > 0, `both processes served requests (${first} and ${second} counted)`);
});

t.test('a sale sold across both processes: never oversold, and both refuse it once it is sold out', async (t) => {
  const buy = (buyer: string) => once(httpPort, 'POST', `/v1/sales/${sale.id}/purchases`, { authorization: `Bearer ${sys.token(buyer)}`, 'content-type': 'application/json' }, '{"quantity":1}');
  const first = await Promise.all(buyers.slice(0, 30).map(buy));
  const statuses = first.map((a) => a.status);
  t.equal(statuses.filter((s) => s === 202).length, 5, 'exactly the stock accepted');
  t.equal(statuses.filter((s) => s === 409).length, 25, 'the rest refused');
  t.ok(first.filter((a) => a.status === 409).every((a) => JSON.parse(a.body).code === 'SOLD_OUT'), 'as sold out');
  const later = await Promise.all(buyers.slice(30).map(buy));
  t.same([...new Set(later.map((a) => `${a.status} ${JSON.parse(a.body).code}`))], ['409 SOLD_OUT'], 'later buyers, on either process, are refused as sold out');
  const view = JSON.parse((await once(httpPort, 'GET', `/v1/sales/${sale.id}`)).body) as { live: { available: number; reserved: number; sold: number } };
  t.equal(view.live.available, 0, 'Redis holds none left');
  t.equal(view.live.reserved + view.live.sold, 5, 'and the five accepted');
});

t.test('one api process killed: the other answers, and the supervisor starts it again', async (t) => {
  const [victim] = listening();
  process.kill(victim!.pid, 'SIGKILL');
  // Once the supervisor saw it exit, its listening socket is gone with it: every new connection reaches the survivor.
  await waitFor('the supervisor saw it die', async () => /child died; restarting/.test(out.text), 30_000);
  const answers = await Promise.all(Array.from({ length: 20 }, () => once(httpPort, 'GET', '/healthz')));
  t.same([...new Set(answers.map((a) => a.status))], [200], 'every request answered meanwhile');
  await waitFor('the killed api restarted', async () => listening().length >= 3, 90_000);
  const restarted = listening().at(-1)!;
  t.equal(restarted.process, victim!.process, 'with the index of the one that died');
  t.equal(restarted.port, httpPort, 'on the same port');

  out.process.kill('SIGTERM');
  t.equal(await out.exited, 0, 'SIGTERM stops everything, exit 0');
});
