/**
 * A bundle's price, computed once when the sale is created and stored as the
 * sale's unit price (what Redis reserves at and settlement charges), with its
 * breakdown for the sale's view.
 *
 * Rounding: a percentage discount's amount is subtotal x basisPoints / 10,000
 * rounded half up, in whole minor units: a half minor unit goes to the buyer
 * (10,005 at 5 % off is 500.25 -> 500 off; 10,010 at 5 % is 500.5 -> 501 off).
 * It is computed in BigInt, so no subtotal loses a unit to floating point.
 */
import { AppError } from '../platform/errors.js';
import { MAX_AMOUNT } from '../platform/http/validate.js';
import type { BundleItem, BundlePrice, Discount } from './repository.js';

/** Most units of one item in one bundle. */
export const MAX_ITEM_QUANTITY = 1_000;
/** 100 %, in basis points. */
export const FULL_BASIS_POINTS = 10_000;

/** The discount's amount off `subtotal`: a flat amount as given, a percentage rounded half up (a half unit to the buyer). */
export function discountOf(subtotal: number, discount: Discount): number {
  if (discount.type === 'flat') return discount.amount;
  const scaled = BigInt(subtotal) * BigInt(discount.basisPoints);
  const whole = scaled / BigInt(FULL_BASIS_POINTS);
  const rest = scaled % BigInt(FULL_BASIS_POINTS);
  return Number(2n * rest >= BigInt(FULL_BASIS_POINTS) ? whole + 1n : whole);
}

/** A discount as the body gives it (the schema checks each field; which fields go with which type is checked here). */
export interface DiscountInput {
  type: 'flat' | 'percentage';
  amount?: number;
  basisPoints?: number;
}

/** The discount, if the body's fields fit its type; a precise refusal otherwise. */
function discountFrom(d: DiscountInput, subtotal: number): Discount {
  if (d.type === 'flat') {
    if (d.basisPoints !== undefined) throw AppError.invalid('/discount/basisPoints', 'must be absent for a flat discount', 'a flat discount has an amount, not basisPoints');
    if (d.amount === undefined) throw AppError.invalid('/discount/amount', 'is required', 'a flat discount needs an amount');
    if (d.amount > subtotal) throw AppError.invalid('/discount/amount', 'exceeds the subtotal', `the discount (${d.amount}) exceeds the bundle's subtotal (${subtotal})`);
    return { type: 'flat', amount: d.amount };
  }
  if (d.amount !== undefined) throw AppError.invalid('/discount/amount', 'must be absent for a percentage discount', 'a percentage discount has basisPoints, not an amount');
  if (d.basisPoints === undefined) throw AppError.invalid('/discount/basisPoints', 'is required', 'a percentage discount needs basisPoints');
  return { type: 'percentage', basisPoints: d.basisPoints };
}

/** Prices a bundle, or refuses it precisely (the paths name the body's fields). */
export function priceBundle(items: BundleItem[], input: DiscountInput | undefined): BundlePrice {
  let subtotal = 0;
  items.forEach((item, i) => {
    subtotal += item.unitPrice * item.quantity;
    // Each term is at most 10^12 x 10^3, so the sum stays exact until it is far past the limit.
    if (subtotal > MAX_AMOUNT) throw AppError.invalid(`/items/${i}`, 'brings the subtotal over the limit', `the bundle's subtotal may be at most ${MAX_AMOUNT} minor units`);
  });
  const discount = input ? discountFrom(input, subtotal) : undefined;
  const discountAmount = discount ? discountOf(subtotal, discount) : 0;
  return {
    items: items.map(({ name, unitPrice, quantity }) => ({ name, unitPrice, quantity })),
    subtotal,
    discount: discount ?? null,
    discountAmount,
    price: subtotal - discountAmount,
  };
}
