/**
 * The demo storefront (`GET /`, web/store/) in a real headless Chromium,
 * against a real api, relay and worker (orders, auctions, notifications):
 * the page uses only the public API and the live channels, so this is their
 * end-to-end test as a buyer's browser sees them. The page loads without a
 * console error, acts as the buyer picked, buys (accepted, then confirmed)
 * and sees the stock drop, also when another buyer buys through the API;
 * bids, sees its price live and the end extended, and when another buyer
 * outbids it through the API sees the price move and the outbid
 * notification arrive in the bell.
 *
 * STAMPEDE_STOREFRONT_SCREENSHOT=<file.png> saves the page at the end.
 */
import t from 'tap';
import { boot, call, waitFor } from '../helpers/system.js';
import { launchBrowser, openPage, waitForText } from '../helpers/browser.js';
import { Auctions } from '../../src/auctions/auctions.js';
import { rememberDemo } from '../../src/dev/storefront.js';

// One worker for settlement and for telling buyers (the notifier's queues without e-mail and SMS, which need servers).
const sys = await boot(t, { relay: true, worker: true, env: { STAMPEDE_WORKER_QUEUES: 'orders,auctions,notifications' } });
const sale = await sys.createSale({ name: 'Demo drop: test sneaker', unitPrice: 12_900, stock: 10, perBuyerLimit: 2 });
const now = Date.now();
const auction = await new Auctions(sys.pool, sys.redis).create({
  title: 'Demo lot: test guitar', currency: 'EUR', startPrice: 10_000, reservePrice: 20_000, buyNowPrice: 45_000,
  // Ends within the soft-close window: the first bid extends it.
  startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 45_000).toISOString(), hardCloseAt: new Date(now + 600_000).toISOString(),
  softCloseSeconds: 60, increment: { type: 'tiered', tiers: [{ from: 0, increment: 500 }, { from: 20_000, increment: 1_000 }] },
}, { role: 'operator', userId: null });
const [ada, grace] = (await sys.createBuyers(2)) as [string, string];
await rememberDemo(sys.redis, { saleId: sale.id, auctionId: auction.id, buyers: [{ id: ada, name: 'Ada' }, { id: grace, name: 'Grace' }] });
const browser = await launchBrowser(t);

const auth = (id: string) => ({ authorization: `Bearer ${sys.token(id)}`, 'content-type': 'application/json' });

t.test('GET /v1/demo lists the demo with a token per buyer that the API accepts', async (t) => {
  const demo = await call(`${sys.url}/v1/demo`);
  t.equal(demo.status, 200);
  t.match(demo.body, { saleId: sale.id, auctionId: auction.id, buyers: [{ id: ada, name: 'Ada', token: String }, { id: grace, name: 'Grace', token: String }] });
  const wallet = await call(`${sys.url}/v1/wallet`, { headers: { authorization: `Bearer ${demo.body.buyers[1].token}` } });
  t.equal(wallet.body.userId, grace, "the token is Grace's");
  const page = await call(`${sys.url}/`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(page.headers.get('content-security-policy'), /default-src 'self'/);
});

t.test('a buyer buys and bids through the page and sees the results arrive live', async (t) => {
  // BID_TOO_LOW is a 409 the page shows (asserted below); any other 4xx or 5xx is a problem.
  const { page, problems, console: lines } = await openPage(t, browser, `${sys.url}/`, { allowStatus: [409] });
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`page console:\n${lines.join('\n')}`);
  });
  // Every text the two status lines show, in order: "accepted" may last less than a poll of ours.
  await page.evaluate(() => {
    const seen: Record<string, string[]> = {};
    (window as unknown as { seen: typeof seen }).seen = seen;
    for (const id of ['purchase-status', 'bid-status']) {
      seen[id] = [];
      const node = document.getElementById(id)!;
      new MutationObserver(() => seen[id]!.push(node.textContent ?? '')).observe(node, { childList: true, characterData: true, subtree: true });
    }
  });
  const seen = (id: string) => page.evaluate((k) => (window as unknown as { seen: Record<string, string[]> }).seen[k]!, id);
  const text = (selector: string) => page.$eval(selector, (e) => e.textContent ?? '');

  await waitForText(page, '#live', (s) => s === 'live', 'the live channel');
  t.equal(await text('#sale-name'), 'Demo drop: test sneaker');
  t.equal(await text('#auction-title'), 'Demo lot: test guitar');
  await waitForText(page, '#sale-stock', (s) => s === '10 of 10 left', 'the stock');
  t.match(await text('#sale-countdown'), /^Ends in \d\d:\d\d:\d\d$/, 'the sale counts down to its end');
  t.match(await text('#auction-countdown'), /^\(in 00:00:\d\d\)$/, 'the auction counts down to its end');

  await t.test('the picker acts as the buyer picked', async (t) => {
    t.same(await page.$$eval('#buyer option', (os) => os.map((o) => (o as HTMLOptionElement).value)), [ada, grace]);
    await page.select('#buyer', grace);
    await waitForText(page, '#live', (s) => s === 'live', 'the live channel again');
    await waitForText(page, '#wallet', (s) => /1,000\.00/.test(s), "Grace's wallet");
  });

  await t.test('buy: accepted, then confirmed; the stock drops, and again when another buyer buys', async (t) => {
    await page.click('#buy');
    await waitForText(page, '#purchase-status', (s) => s.startsWith('Confirmed'), 'the purchase to be confirmed', 30_000);
    const states = await seen('purchase-status');
    const accepted = states.findIndex((s) => s.startsWith('Accepted'));
    t.ok(accepted >= 0, `accepted was shown (${JSON.stringify(states)})`);
    t.ok(states.findIndex((s) => s.startsWith('Confirmed')) > accepted, 'then confirmed');
    t.match(await text('#purchase-status'), /Confirmed: €129\.00 paid\. pur_/);
    const purchaseId = /pur_\w+/.exec(await text('#purchase-status'))![0];
    const order = await sys.pool.query('SELECT buyer_id FROM orders WHERE purchase_id = $1', [purchaseId]);
    t.same(order.rows, [{ buyer_id: grace }], "the order is the picked buyer's");
    await waitForText(page, '#sale-stock', (s) => s === '9 of 10 left', 'the stock to drop');
    await waitForText(page, '#wallet', (s) => /871\.00/.test(s), 'the wallet to be debited');

    const other = await sys.purchase(ada, sale.id);
    t.equal(other.status, 202, "Ada's purchase through the API");
    await waitForText(page, '#sale-stock', (s) => s === '8 of 10 left', "the stock to drop live with Ada's purchase");
  });

  await t.test('bid: a refusal is shown; a bid leads, its price and extension arrive live; an outbid moves the price and rings the bell', async (t) => {
    t.equal(await text('#bid-minimum'), 'Next bid at least €100.00.');
    await page.type('#bid-amount', '50');
    await page.click('#bid');
    await waitForText(page, '#bid-status', (s) => s.includes('BID_TOO_LOW'), 'the refusal');
    t.match(await text('#bid-status'), /below|minimum/i, 'the detail of the problem is shown');

    await page.$eval('#bid-amount', (e) => ((e as HTMLInputElement).value = ''));
    await page.type('#bid-amount', '100');
    await page.click('#bid');
    await waitForText(page, '#bid-status', (s) => s.startsWith('You lead at €100.00'), 'the bid to lead');
    await waitForText(page, '#auction-price', (s) => s === '€100.00', 'the price, live');
    t.equal(await text('#auction-bids'), '1');
    const leader = await text('#auction-leader');
    t.not(leader, '—', 'the leader has a handle');
    await waitForText(page, '#auction-extended', (s) => s.startsWith('Extended by'), 'the extension the bid caused');
    t.equal(await text('#bid-minimum'), 'Next bid at least €105.00.');
    const mine = async (id: string) => (await call(`${sys.url}/v1/auctions/${auction.id}/bids?mine=true`, { headers: auth(id) })).body.items.length;
    t.same([await mine(grace), await mine(ada)], [1, 0], "the bid is the picked buyer's");

    // The bell before the outbid: Grace's purchase told her already; count what is there now.
    const before = await waitFor('the purchase notification', async () => {
      const n = Number(await page.$eval('#bell-count', (e) => (e as HTMLElement).dataset.count));
      return n >= 1 ? n : undefined;
    });
    t.equal(await page.$$eval('#inbox-items li[data-type="auction.outbid"]', (l) => l.length), 0, 'not outbid yet');

    const outbid = await call(`${sys.url}/v1/auctions/${auction.id}/bids`, { method: 'POST', headers: auth(ada), body: JSON.stringify({ amount: 15_000 }) });
    t.equal(outbid.status, 202, `Ada outbids through the API: ${JSON.stringify(outbid.body)}`);
    await waitForText(page, '#auction-price', (s) => s === '€150.00', 'the price to move live');
    t.equal(await text('#auction-bids'), '2');
    t.not(await text('#auction-leader'), leader, 'the leader changed');
    await waitForText(page, '#bid-status', (s) => s.startsWith('Outbid: the price is now €150.00'), 'the bid line to say so');
    await waitFor('the outbid notification in the bell', async () =>
      (await page.$$eval('#inbox-items li[data-type="auction.outbid"]', (l) => l.length)) === 1, 30_000);
    t.match(await page.$eval('#inbox-items li[data-type="auction.outbid"]', (e) => e.textContent), /You were outbid on Demo lot: test guitar/);
    const after = Number(await page.$eval('#bell-count', (e) => (e as HTMLElement).dataset.count));
    t.ok(after > before, `the bell counts it (${before} -> ${after})`);
    t.ok(await page.$eval('#bell-count', (e) => getComputedStyle(e).display !== 'none'), 'the count shows');

    await page.click('#bell');
    t.ok(await page.$eval('#inbox', (e) => !(e as HTMLElement).hidden), 'the bell opens the inbox');
    t.equal(await page.$eval('#bell', (e) => e.getAttribute('aria-expanded')), 'true');
    await waitForText(page, '#bell-count', (s) => s === '0', 'the count to clear once opened');
    const inbox = await call(`${sys.url}/v1/notifications?limit=1`, { headers: auth(grace) });
    t.equal(inbox.body.unread, 0, 'opening it is recorded (POST /v1/notifications/opened)');
  });

  if (process.env.STAMPEDE_STOREFRONT_SCREENSHOT) await page.screenshot({ path: process.env.STAMPEDE_STOREFRONT_SCREENSHOT });
  t.same(problems, [], 'no console error, page error or failed request');
});
