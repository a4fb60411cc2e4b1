/**
 * A bundle's price (src/sales/bundles.ts): subtotal less a flat amount, or
 * less a percentage rounded half up (a half minor unit to the buyer), exact
 * for every amount up to the limit; refusals name the field.
 */
import t from 'tap';
import { discountOf, priceBundle } from '../../src/sales/bundles.js';
import { AppError } from '../../src/platform/errors.js';
import { MAX_AMOUNT } from '../../src/platform/http/validate.js';

const pct = (basisPoints: number) => ({ type: 'percentage' as const, basisPoints });

t.test('a percentage rounds half up, in whole minor units', async (t) => {
  const cases: [number, number, number][] = [
    [10_010, 500, 501], [10_005, 500, 500], [10_030, 500, 502], [1, 5_000, 1], [1, 4_999, 0], [3, 5_000, 2], [0, 7_500, 0],
    [13_533, 1_250, 1_692], [100, 10_000, 100], [100, 0, 0], [99, 1, 0], [50, 100, 1], [49, 100, 0],
  ];
  for (const [subtotal, bp, off] of cases) t.equal(discountOf(subtotal, pct(bp)), off, `${bp} bp of ${subtotal}`);
  // Past 2^53 / 10^4 a float product loses units; BigInt does not.
  t.equal(discountOf(MAX_AMOUNT, pct(3_333)), 333_300_000_000);
  t.equal(discountOf(999_999_999_999, pct(9_999)), 999_899_999_999, '999,999,999,999 x 0.9999 = 999,899,999,999.0001');
  t.equal(discountOf(999_999_999_995, pct(5_000)), 499_999_999_998, 'x.5 at the top of the range rounds up');
  for (let subtotal = 0; subtotal < 2_000; subtotal += 7) {
    for (const bp of [1, 333, 2_500, 5_000, 6_667, 9_999]) {
      const exact = (subtotal * bp) / 10_000;
      const want = exact - Math.floor(exact) >= 0.5 - 1e-9 ? Math.ceil(exact) : Math.floor(exact);
      if (discountOf(subtotal, pct(bp)) !== want) t.fail(`${bp} bp of ${subtotal}`);
    }
  }
  t.equal(discountOf(500, { type: 'flat', amount: 120 }), 120, 'a flat amount is what it says');
});

t.test('priceBundle: the breakdown, and the refusals', async (t) => {
  const items = [{ name: 'A', unitPrice: 250, quantity: 4 }, { name: 'B', unitPrice: 1, quantity: 1 }];
  t.same(priceBundle(items, { type: 'flat', amount: 1 }), { items, subtotal: 1_001, discount: { type: 'flat', amount: 1 }, discountAmount: 1, price: 1_000 });
  t.same(priceBundle(items, undefined), { items, subtotal: 1_001, discount: null, discountAmount: 0, price: 1_001 });
  const refused = (fn: () => unknown, path: string, what: string) => {
    try {
      fn();
      t.fail(`${what}: not refused`);
    } catch (err) {
      t.ok(err instanceof AppError && err.code === 'VALIDATION_FAILED', what);
      t.same((err as AppError).extra?.errors, [{ path, message: (err as AppError).extra?.errors && ((err as AppError).extra!.errors as { message: string }[])[0]!.message }], `${what}: ${path}`);
    }
  };
  refused(() => priceBundle(items, { type: 'flat', amount: 1_002 }), '/discount/amount', 'a flat discount over the subtotal');
  refused(() => priceBundle(items, { type: 'flat' }), '/discount/amount', 'flat without an amount');
  refused(() => priceBundle(items, { type: 'flat', amount: 1, basisPoints: 1 }), '/discount/basisPoints', 'flat with basis points');
  refused(() => priceBundle(items, { type: 'percentage' }), '/discount/basisPoints', 'percentage without basis points');
  refused(() => priceBundle(items, { type: 'percentage', basisPoints: 1, amount: 1 }), '/discount/amount', 'percentage with an amount');
  refused(() => priceBundle([{ name: 'A', unitPrice: MAX_AMOUNT, quantity: 1 }, { name: 'B', unitPrice: 1, quantity: 1 }], undefined), '/items/1', 'a subtotal over the limit');
  t.equal(priceBundle([{ name: 'A', unitPrice: MAX_AMOUNT, quantity: 1 }], pct(10_000)).price, 0, 'never below 0');
});
