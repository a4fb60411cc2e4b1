/**
 * Purchase ids: the sale they belong to, the time they were made (so ids
 * made later sort later), and the older all-random form, which stays valid.
 */
import t from 'tap';
import { newPurchaseId, newSaleId, PURCHASE_ID, saleOfPurchase, timePrefix } from '../../src/platform/ids.js';

t.test('a new purchase id names its sale and is well-formed', async (t) => {
  const sale = newSaleId();
  const id = newPurchaseId(sale);
  t.match(id, PURCHASE_ID);
  t.equal(saleOfPurchase(id), sale);
  t.equal(id.length, 'pur_'.length + 12 + 1 + 8 + 16);
});

t.test('ids made later sort later, byte by byte, across digit and letter boundaries', async (t) => {
  const at = [Date.UTC(2024, 0, 1), Date.UTC(2024, 0, 1) + 35, Date.UTC(2024, 0, 1) + 36, Date.UTC(2026, 10, 22), Date.UTC(2026, 10, 22) + 1, Date.UTC(2113, 0, 1)];
  const prefixes = at.map((ms) => timePrefix(ms));
  t.ok(prefixes.every((p) => /^[0-9a-z]{8}$/.test(p)), 'eight base-36 digits');
  t.same([...prefixes].sort(), prefixes, 'plain (code point) order is time order');
  const sale = newSaleId();
  const ids = Array.from({ length: 3 }, () => newPurchaseId(sale));
  const later = `pur_${sale.slice(4)}_${timePrefix(Date.now() + 1000)}${'0'.repeat(16)}`;
  t.ok(ids.every((id) => id < later), 'an id made a second later sorts after every id made now');
});

t.test('the older form (16 random characters) is still a purchase id; anything else is not', async (t) => {
  const sale = newSaleId();
  t.equal(saleOfPurchase(`pur_${sale.slice(4)}_${'a1'.repeat(8)}`), sale);
  for (const bad of [`pur_${sale.slice(4)}_${'a'.repeat(15)}`, `pur_${sale.slice(4)}_${'a'.repeat(20)}`, `pur_${sale.slice(4)}_${'a'.repeat(25)}`, `pur_${sale.slice(4)}_${'A'.repeat(24)}`]) {
    t.equal(saleOfPurchase(bad), undefined, bad);
  }
});
