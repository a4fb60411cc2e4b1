/**
 * The browser helper itself (test/helpers/browser.ts): a page that logs an
 * error, throws, fetches a missing file and an unreachable server is
 * reported with all four, and a clean page with none. The page tests'
 * "no console error" is only worth what this proves.
 */
import t from 'tap';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { launchBrowser, openPage, waitForText } from '../helpers/browser.js';

/** A port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A server of two pages, closed when the file ends. */
async function pages(): Promise<string> {
  const closedPort = await freePort();
  // A page without an icon makes Chromium fetch /favicon.ico: pages declare none.
  const head = '<!doctype html><link rel="icon" href="data:,">';
  const bad = `${head}<title>bad</title><p id="state">loading</p><script type="module">
    console.error('something broke');
    await fetch('/missing').catch(() => {});
    await fetch('http://127.0.0.1:${closedPort}/unreachable').catch(() => {});
    document.getElementById('state').textContent = 'done';
    setTimeout(() => { throw new Error('thrown later'); }, 0);
  </script>`;
  const good = `${head}<title>good</title><p id="state">loading</p><script type="module">
    console.log('fine');
    document.getElementById('state').textContent = 'done';
  </script>`;
  const server: Server = createServer((req, res) => {
    const body = req.url === '/bad' ? bad : req.url === '/good' ? good : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'text/html' }).end(body ?? 'no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const base = await pages();
const browser = await launchBrowser(t);

t.test('console errors, page errors, 4xx answers and failed requests are all recorded', async (t) => {
  const { page, problems } = await openPage(t, browser, `${base}/bad`);
  await waitForText(page, '#state', (s) => s === 'done', 'the page to finish');
  await new Promise((r) => setTimeout(r, 200));
  const kinds = problems.map((p) => p.kind).sort();
  t.same(kinds, ['console', 'http', 'pageerror', 'requestfailed'], JSON.stringify(problems));
  t.match(problems.find((p) => p.kind === 'console')?.text, /something broke/);
  t.match(problems.find((p) => p.kind === 'pageerror')?.text, /thrown later/);
  t.match(problems.find((p) => p.kind === 'http')?.text, /\/missing: 404$/);
  t.match(problems.find((p) => p.kind === 'requestfailed')?.text, /unreachable: net::ERR_CONNECTION_REFUSED/);
});

t.test('an expected status is not a problem; a clean page has none', async (t) => {
  const bad = await openPage(t, browser, `${base}/bad`, { allowStatus: [404] });
  await waitForText(bad.page, '#state', (s) => s === 'done', 'the page to finish');
  t.notOk(bad.problems.some((p) => p.kind === 'http'), 'the 404 was expected');
  const good = await openPage(t, browser, `${base}/good`);
  await waitForText(good.page, '#state', (s) => s === 'done', 'the page to finish');
  t.same(good.problems, []);
  t.ok(good.console.includes('log: fine'), 'every console line is kept');
});

t.test('waitForText says what the element read when it times out', async (t) => {
  const { page } = await openPage(t, browser, `${base}/good`);
  await t.rejects(waitForText(page, '#state', (s) => s === 'never', 'a text that never comes', 300), /#state reads "done"/);
});
