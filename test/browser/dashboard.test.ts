/**
 * The operators' live board (`GET /ops`, web/ops/) in a real headless
 * Chromium against a real api and scheduler: the page loads with no console
 * error, asks for the operator key and keeps it only in memory, its numbers
 * move when purchases happen (no reload), roles show their health, and the
 * replay button empties a dead-letter queue.
 *
 * STAMPEDE_DASHBOARD_SCREENSHOT=<file.png> saves the page at the end.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { boot, OPERATOR_KEY, waitFor, call } from '../helpers/system.js';
import { launchBrowser, openPage, waitForText } from '../helpers/browser.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';

const sys = await boot(t, { scheduler: true, env: { STAMPEDE_OPS_BOARD_MS: '200', STAMPEDE_TALLY_FLUSH_MS: '100', STAMPEDE_HEARTBEAT_MS: '200' } });
await waitFor('the api ready', async () => (await call(`${sys.url}/readyz`)).status === 200);
const browser = await launchBrowser(t);

t.test('an operator watches a drop, sees it move, and replays a dead letter from the page', async (t) => {
  const sale = await sys.createSale({ name: 'Board drop', stock: 5, perBuyerLimit: 1 });
  const buyers = await sys.createBuyers(3);
  const { page, problems, console: lines } = await openPage(t, browser, `${sys.url}/ops`);
  t.teardown(() => {
    if (!t.passing()) t.comment(`page console:\n${lines.join('\n')}`);
  });
  t.ok(await page.$eval('#board', (el) => (el as HTMLElement).hidden), 'nothing shown before a key');

  await page.type('#key', OPERATOR_KEY);
  await page.click('#key-form button');
  await waitForText(page, '#status', (s) => s.startsWith('Live'), 'the stream live');
  t.equal(await page.$eval('#key', (el) => (el as HTMLInputElement).value), '', 'the key field is emptied');
  t.equal(await page.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length), 0, 'the key is stored nowhere');

  const row = `#sales tr[data-sale="${sale.id}"]`;
  t.equal(await waitForText(page, `${row} .available`, (s) => s === '5', 'the sale on the board'), '5');
  for (const buyer of buyers.slice(0, 2)) t.equal((await sys.purchase(buyer, sale.id)).status, 202);
  t.equal(await waitForText(page, `${row} .available`, (s) => s === '3', 'the stock moving live'), '3', 'two taken, no reload');
  t.equal(await waitForText(page, `${row} .reserved`, (s) => s === '2', 'reserved'), '2');
  await waitForText(page, `${row} .accepted`, (s) => Number(s) > 0, 'a rate of accepted purchases');
  await waitForText(page, '#roles', (s) => s.includes('api') && s.includes('scheduler') && s.includes('healthy'), 'the roles, healthy');

  // A dead letter, archived by the scheduler's keeper, replayed from the page.
  const amqp = await openAmqp(t, sys.cfg);
  const { orders } = sys.cfg.topology;
  // Its own body: the archive keeps one of each (queue, message id, body), across runs of the shared test database too.
  await amqp.sendToQueue(deadLetterQueue(orders), JSON.stringify({ a: 'order nobody could settle', run: randomUUID() }), { headers: { 'x-stampede-last-error': 'settlement failed: test' } });
  const dlq = '#dead-letters tr[data-dlq="orders"]';
  // The shared test database may hold dead letters other runs archived: this one is one more.
  const { rows: [held] } = await sys.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM dead_letters WHERE queue = $1 AND replayed_at IS NULL`, [orders.queue]);
  await waitForText(page, `${dlq} .waiting`, (s) => s === String(held!.n + 1), 'the dead letter archived and shown');
  t.ok(Number(await page.$eval('#dead-total', (el) => el.textContent)) >= 1, 'counted in the heading');
  // The rows are drawn again with every snapshot: click inside the page, where no snapshot can come between finding and clicking.
  const click = (selector: string) => page.$eval(selector, (el) => (el as HTMLElement).click());
  await click(`${dlq} button[data-action="show"]`);
  await waitForText(page, '#dead-messages', (s) => s.includes('order nobody could settle') && s.includes('settlement failed: test'), 'the message, with its body and last error');

  await click(`${dlq} button[data-action="replay-all"]`);
  await waitForText(page, '#dead-result', (s) => s === `${held!.n + 1} replayed from orders`, 'the replay answered');
  await waitForText(page, `${dlq} .waiting`, (s) => s === '0', 'the dead-letter queue emptied');
  t.equal(await amqp.depth(orders.queue), held!.n + 1, 'the messages are back on the orders queue');
  t.equal(await amqp.depth(deadLetterQueue(orders)), 0, 'and not in its .dlq');

  // Reconciliation, run from the page: the test's own sale is consistent, whatever else the shared test database holds.
  await page.$eval('#recon-run', (el) => (el as HTMLElement).click());
  await waitForText(page, '#recon-result', (s) => /^Run \d+:/.test(s), 'the run answered');
  await waitForText(page, '#recon-checks', (s) => s.includes('sales') && s.includes('wallets'), 'its checks on the board');

  if (process.env.STAMPEDE_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.STAMPEDE_DASHBOARD_SCREENSHOT, fullPage: true });
  t.same(problems, [], 'no console error, no failed request');
});

t.test('a wrong key is refused on the page, and the board stays hidden', async (t) => {
  const { page, problems } = await openPage(t, browser, `${sys.url}/ops`, { allowStatus: [401] });
  await page.type('#key', 'not-a-key');
  await page.click('#key-form button');
  await waitForText(page, '#status', (s) => s.startsWith('Refused'), 'the refusal');
  t.ok(await page.$eval('#board', (el) => (el as HTMLElement).hidden), 'the board stays hidden');
  t.same(problems.filter((p) => !/ 401$/.test(p.text)), [], 'nothing but the refusal');
});
