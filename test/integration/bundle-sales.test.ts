/**
 * Bundle sales: the price is computed once from the items and the discount
 * (a percentage rounded half up: a half minor unit to the buyer), stored,
 * shown with its breakdown, and charged exactly by settlement.
 */
import t from 'tap';
import { boot, call } from '../helpers/system.js';

const sys = await boot(t, { relay: true, worker: true });
const bundleSale = (over: Record<string, unknown>) => ({
  name: 'Starter kit', sku: 'KIT-1', currency: 'EUR', stock: 10, perBuyerLimit: 2,
  startsAt: new Date(Date.now() - 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), ...over,
});
const create = (over: Record<string, unknown>) => sys.operator('/v1/sales', { method: 'POST', body: JSON.stringify(bundleSale(over)) });

t.test('the price and its breakdown: flat, percentage (rounded half up), none, 100 %', async (t) => {
  const items = [{ name: 'Console', unitPrice: 29_999, quantity: 1 }, { name: 'Controller', unitPrice: 4_999, quantity: 2 }];
  const flat = await create({ items, discount: { type: 'flat', amount: 2_000 } });
  t.equal(flat.status, 201);
  t.equal(flat.body.unitPrice, 37_997, 'subtotal 39,997 less 2,000');
  t.same(flat.body.bundle, { items, subtotal: 39_997, discount: { type: 'flat', amount: 2_000 }, discountAmount: 2_000, price: 37_997 });
  t.equal(flat.body.private, false);
  t.same((await call(`${sys.url}/v1/sales/${flat.body.id}`)).body.bundle, flat.body.bundle, 'the sale\'s view shows the same breakdown');
  t.same((await sys.pool.query('SELECT unit_price FROM sales WHERE id = $1', [flat.body.id])).rows[0].unit_price, 37_997, 'stored');

  const cases: [number, number, number][] = [
    // subtotal, basis points, amount off: exactly half a unit goes to the buyer, less than half does not.
    [10_010, 500, 501], // 500.5 -> 501
    [10_005, 500, 500], // 500.25 -> 500
    [10_030, 500, 502], // 501.5 -> 502
    [999, 3_333, 333], // 332.9667 -> 333
    [1, 5_000, 1], // 0.5 -> 1
    [1, 4_999, 0], // 0.4999 -> 0
  ];
  for (const [subtotal, basisPoints, off] of cases) {
    const a = await create({ items: [{ name: 'Thing', unitPrice: subtotal, quantity: 1 }], discount: { type: 'percentage', basisPoints } });
    t.equal(a.status, 201);
    t.match(a.body.bundle, { subtotal, discountAmount: off, price: subtotal - off }, `${basisPoints} bp of ${subtotal}: ${off} off`);
    t.equal(a.body.unitPrice, subtotal - off);
  }
  const none = await create({ items: [{ name: 'A', unitPrice: 300, quantity: 3 }, { name: 'B', unitPrice: 1, quantity: 1 }] });
  t.same(none.body.bundle, { items: [{ name: 'A', unitPrice: 300, quantity: 3 }, { name: 'B', unitPrice: 1, quantity: 1 }], subtotal: 901, discount: null, discountAmount: 0, price: 901 }, 'no discount');
  const free = await create({ items, discount: { type: 'percentage', basisPoints: 10_000 } });
  t.match(free.body, { unitPrice: 0, bundle: { discountAmount: 39_997, price: 0 } }, '100 % off: free, never below 0');
  const all = await create({ items, discount: { type: 'flat', amount: 39_997 } });
  t.equal(all.body.unitPrice, 0, 'a flat discount of the whole subtotal');
  const plain = await sys.createSale({ sku: 'PLAIN-1' });
  t.equal(plain.bundle, null, 'a single-item sale has no bundle');
});

t.test('settlement charges the stored bundle price exactly', async (t) => {
  const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 100_000 });
  const sale = (await create({
    sku: 'KIT-2', items: [{ name: 'Tent', unitPrice: 12_345, quantity: 1 }, { name: 'Peg', unitPrice: 99, quantity: 12 }],
    discount: { type: 'percentage', basisPoints: 1_250 },
  })).body;
  // 12,345 + 1,188 = 13,533; 12.5 % = 1,691.625 -> 1,692 off; 11,841 a bundle.
  t.match(sale.bundle, { subtotal: 13_533, discountAmount: 1_692, price: 11_841 });
  const bought = await sys.purchase(buyer!, sale.id, { quantity: 2 });
  t.equal(bought.status, 202);
  await sys.drained(sale.id);
  const purchase = await call(`${sys.url}${bought.body.statusUrl}`, { headers: { authorization: `Bearer ${sys.token(buyer!)}` } });
  t.match(purchase.body, { status: 'confirmed', quantity: 2, unitPrice: 11_841, amount: 23_682 });
  const { rows: orders } = await sys.pool.query('SELECT unit_price, amount FROM orders WHERE sale_id = $1', [sale.id]);
  t.same(orders, [{ unit_price: 11_841, amount: 23_682 }], 'the order');
  const { rows: ledger } = await sys.pool.query('SELECT amount FROM ledger_entries WHERE ref = $1', [`purchase:${bought.body.purchaseId}`]);
  t.same(ledger, [{ amount: -23_682 }], 'one debit of exactly two bundles');
  const wallet = await call(`${sys.url}/v1/wallet`, { headers: { authorization: `Bearer ${sys.token(buyer!)}` } });
  t.match(wallet.body, { balances: [{ currency: 'EUR', balance: 100_000 - 23_682 }] });
});
