/**
 * settleOrders against the real Postgres: the checks that replaced the
 * orders->users and ledger->users foreign keys (migration 1732600000000).
 */
import t from 'tap';
import { createLogger } from '../../src/platform/log.js';
import { createPool } from '../../src/platform/db/pool.js';
import { migrate } from '../../src/platform/db/migrate.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { createBuyers, creditWallet } from '../../src/buyers/buyers.js';
import { Sales } from '../../src/sales/sales.js';
import { settleOrders } from '../../src/sales/settlement.js';
import type { PurchaseEvent } from '../../src/sales/events.js';
import { newPurchaseId, newUserId, randomId } from '../../src/platform/ids.js';
import { testConfig } from '../helpers/system.js';

const cfg = testConfig();
await migrate(cfg.STAMPEDE_DATABASE_URL, createLogger('silent', 'test'));
const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 2);
const redis = createRedis(cfg.STAMPEDE_REDIS_URL);
t.teardown(async () => {
  await pool.end();
  await redis.quit();
});

const PRICE = 700;
const sale = await new Sales(pool, redis).create(
  { name: 'settlement test', sku: 'SETTLE-1', unitPrice: PRICE, currency: 'EUR', stock: 100, perBuyerLimit: 5,
    startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString() },
  { role: 'operator', userId: null },
);

const accepted = (buyerId: string): PurchaseEvent => ({
  eventId: `evt_${randomId(16)}`, type: 'accepted', time: Date.now(),
  data: { purchaseId: newPurchaseId(sale.id), saleId: sale.id, buyerId, quantity: 1, unitPrice: PRICE, currency: 'EUR', acceptedAt: Date.now() },
});

t.test('a funded buyer is charged once, however often the batch is settled', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'funded' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 1_000, `credit:settlement-test:${buyer!.id}`);
  const e = accepted(buyer!.id);
  const first = await settleOrders(pool, [e]);
  const again = await settleOrders(pool, [e]);
  t.equal(first[0]!.status, 'confirmed');
  t.equal(again[0]!.status, 'confirmed');
  const { rows } = await pool.query('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(rows[0]!.balance, 1_000 - PRICE, 'debited once');
  const ledger = await pool.query('SELECT count(*)::int AS n FROM ledger_entries WHERE ref = $1', [`purchase:${e.data.purchaseId}`]);
  t.equal(ledger.rows[0]!.n, 1, 'one ledger entry');
});

t.test('a known buyer without a wallet gets a failed order and no ledger entry', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'walletless' }]);
  const e = accepted(buyer!.id);
  const [r] = await settleOrders(pool, [e]);
  t.equal(r!.status, 'failed');
  t.equal(r!.reason, 'INSUFFICIENT_FUNDS');
  const ledger = await pool.query('SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = $1', [buyer!.id]);
  t.equal(ledger.rows[0]!.n, 0);
});

t.test('an unknown buyer\'s purchase fails (UNKNOWN_BUYER), the rest of its batch settles, and a redelivery changes nothing', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'beside the stranger' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 1_000, `credit:settlement-test:${buyer!.id}`);
  const good = accepted(buyer!.id);
  const stranger = accepted(newUserId());
  const results = await settleOrders(pool, [good, stranger]);
  t.same(results.map((r) => [r.status, r.reason]), [['confirmed', ''], ['failed', 'UNKNOWN_BUYER']]);
  const again = await settleOrders(pool, [stranger]);
  t.same([again[0]!.status, again[0]!.reason], ['failed', 'UNKNOWN_BUYER'], 'redelivered: the stored outcome');
  const { rows } = await pool.query('SELECT purchase_id, status, failure_reason FROM orders WHERE purchase_id = $1', [stranger.data.purchaseId]);
  t.same(rows, [{ purchase_id: stranger.data.purchaseId, status: 'failed', failure_reason: 'UNKNOWN_BUYER' }], 'one failed order');
  const ledger = await pool.query('SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = $1', [stranger.data.buyerId]);
  t.equal(ledger.rows[0]!.n, 0, 'no ledger entry for the stranger');
  const wallet = await pool.query('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(wallet.rows[0]!.balance, 1_000 - PRICE, 'the known buyer charged once');
});

const expiryOf = (e: PurchaseEvent, reason: 'RESERVATION_EXPIRED' | 'UNSETTLEABLE' = 'RESERVATION_EXPIRED'): PurchaseEvent => ({
  eventId: `${e.data.purchaseId}:expired`, type: 'expired', time: Date.now(), data: { ...e.data, expiredAt: Date.now() }, reason,
});

t.test('an expiry that commits before the late settlement fails the purchase; the settlement then charges nothing', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'late' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 1_000, `credit:settlement-test:${buyer!.id}`);
  const e = accepted(buyer!.id);
  const [expired] = await settleOrders(pool, [expiryOf(e)]);
  t.same([expired!.status, expired!.reason], ['failed', 'RESERVATION_EXPIRED']);
  const [late] = await settleOrders(pool, [e]);
  t.same([late!.status, late!.reason], ['failed', 'RESERVATION_EXPIRED'], 'the settlement finds the failed order');
  const wallet = await pool.query('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(wallet.rows[0]!.balance, 1_000, 'nothing charged');
});

t.test('a settlement that commits before the expiry stands; the expiry changes nothing', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'on time' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 1_000, `credit:settlement-test:${buyer!.id}`);
  const e = accepted(buyer!.id);
  const [settled] = await settleOrders(pool, [e]);
  t.equal(settled!.status, 'confirmed');
  const [expired] = await settleOrders(pool, [expiryOf(e)]);
  t.same([expired!.status, expired!.reason], ['confirmed', ''], 'the expiry finds the confirmed order');
  const wallet = await pool.query('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(wallet.rows[0]!.balance, 1_000 - PRICE, 'charged once');
});

t.test('a settlement and its expiry racing in many transactions: exactly one decides, charged at most once', async (t) => {
  const wide = createPool(cfg.STAMPEDE_DATABASE_URL, 8);
  t.teardown(() => wide.end());
  const buyers = await createBuyers(pool, Array.from({ length: 10 }, (_, i) => ({ name: `racing expiry ${i}` })));
  for (const b of buyers) await creditWallet(pool, b.id, 'EUR', 1_000, `credit:settlement-expiry-race:${b.id}`);
  for (const b of buyers) {
    const e = accepted(b.id);
    // Both kinds at once, four each; a loser aborts on the order's unique key (the worker retries it).
    const race = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => settleOrders(wide, [i % 2 === 0 ? e : expiryOf(e)])));
    const settled = race.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof settleOrders>>> => r.status === 'fulfilled').map((r) => r.value[0]!);
    t.ok(settled.length > 0, 'at least one transaction settles');
    const { rows } = await pool.query<{ status: string; failure_reason: string | null }>('SELECT status, failure_reason FROM orders WHERE purchase_id = $1', [e.data.purchaseId]);
    t.equal(rows.length, 1, 'one order');
    t.ok(settled.every((r) => r.status === rows[0]!.status), 'every transaction that settled answers the one stored outcome');
    const wallet = await pool.query('SELECT balance FROM wallets WHERE user_id = $1', [b.id]);
    t.equal(wallet.rows[0]!.balance, rows[0]!.status === 'confirmed' ? 1_000 - PRICE : 1_000, 'charged exactly when confirmed');
  }
});

t.test('an expiry settles even when its event\'s terms differ from the sale\'s (it moves no money)', async (t) => {
  const e = accepted(newUserId());
  const odd: PurchaseEvent = { ...e, data: { ...e.data, unitPrice: PRICE + 1 } } as PurchaseEvent;
  await t.rejects(settleOrders(pool, [odd]), /terms differ/, 'the acceptance itself cannot be settled');
  const [r] = await settleOrders(pool, [expiryOf(odd, 'UNSETTLEABLE')]);
  t.same([r!.status, r!.reason], ['failed', 'UNSETTLEABLE']);
});

t.test('one batch settled by six transactions at once: each purchase ordered and charged once; a loser aborts whole', async (t) => {
  const wide = createPool(cfg.STAMPEDE_DATABASE_URL, 6);
  t.teardown(() => wide.end());
  const race = (events: PurchaseEvent[]) => Promise.allSettled(Array.from({ length: 6 }, () => settleOrders(wide, events)));
  const ordersOf = async (events: PurchaseEvent[]) =>
    (await pool.query<{ purchase_id: string; status: string }>('SELECT purchase_id, status FROM orders WHERE purchase_id = ANY($1)', [events.map((e) => e.data.purchaseId)])).rows;

  // Funded buyers: the wallet locks (taken first, in key order) queue the
  // transactions; each later one finds the orders and changes nothing.
  const funded = await createBuyers(pool, Array.from({ length: 20 }, (_, i) => ({ name: `racer ${i}` })));
  for (const b of funded) await creditWallet(pool, b.id, 'EUR', 1_000, `credit:settlement-race:${b.id}`);
  const twice = accepted(funded[0]!.id); // buyer 0's second purchase finds 300 left: failed
  const paid = [...funded.map((b) => accepted(b.id)), twice];
  const paidRace = await race(paid);
  t.same(paidRace.map((o) => o.status), Array(6).fill('fulfilled'), 'queued on the wallet locks, every transaction settles');
  const paidOrders = await ordersOf(paid);
  t.equal(paidOrders.length, paid.length, 'one order per purchase');
  t.equal(paidOrders.filter((o) => o.status === 'confirmed').length, funded.length, 'every funded buyer confirmed once');
  t.equal(paidOrders.find((o) => o.purchase_id === twice.data.purchaseId)?.status, 'failed', 'the purchase the balance no longer covers failed');
  const { rows: ledger } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger_entries WHERE ref = ANY($1)', [paid.map((e) => `purchase:${e.data.purchaseId}`)]);
  t.equal(ledger[0]!.n, funded.length, 'one debit per confirmed order');
  const { rows: balances } = await pool.query<{ balance: number }>('SELECT balance FROM wallets WHERE user_id = ANY($1)', [funded.map((b) => b.id)]);
  t.same([...new Set(balances.map((b) => b.balance))], [1_000 - PRICE], 'each funded wallet debited exactly once');

  // Buyers without a wallet take no lock: the transactions really insert the
  // same orders at once. The losers fail on the unique key and write nothing.
  const walletless = await createBuyers(pool, Array.from({ length: 20 }, (_, i) => ({ name: `walletless racer ${i}` })));
  const unpaid = walletless.map((b) => accepted(b.id));
  const unpaidRace = await race(unpaid);
  t.ok(unpaidRace.some((o) => o.status === 'fulfilled'), 'one transaction settled the batch');
  for (const o of unpaidRace) {
    if (o.status === 'rejected') t.equal((o.reason as { code?: string }).code, '23505', 'a loser fails on the unique key, nothing else');
  }
  const unpaidOrders = await ordersOf(unpaid);
  t.equal(unpaidOrders.length, unpaid.length, 'one order per purchase');
  t.ok(unpaidOrders.every((o) => o.status === 'failed'), 'each failed (no wallet)');
  const { rows: events } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM purchase_events WHERE event_id = ANY($1)', [unpaid.map((e) => e.eventId)]);
  t.equal(events[0]!.n, unpaid.length, 'each event logged once');

  const again = await settleOrders(pool, [...paid, ...unpaid]);
  const stored = new Map([...paidOrders, ...unpaidOrders].map((o) => [o.purchase_id, o.status]));
  t.same(again.map((r) => r.status), [...paid, ...unpaid].map((e) => stored.get(e.data.purchaseId)), 'settling again answers what is stored');
});

t.test('the event log holds each event once: repeated in a batch, redelivered, a cancellation before and after its acceptance', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'event log' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 10_000, `credit:settlement-log:${buyer!.id}`);
  const cancel = (of: PurchaseEvent): PurchaseEvent => ({
    eventId: `evt_${randomId(16)}`, type: 'cancel_requested', time: Date.now() + 5, data: { ...of.data, requestedAt: Date.now() },
  });
  const logOf = async (events: PurchaseEvent[]) =>
    (await pool.query<{ event_id: string; purchase_id: string; type: string; payload: unknown; occurred_at: Date }>(
      'SELECT event_id, purchase_id, type, payload, occurred_at FROM purchase_events WHERE purchase_id = ANY($1) ORDER BY occurred_at, event_id',
      [[...new Set(events.map((e) => e.data.purchaseId))]])).rows;
  const rowOf = (e: PurchaseEvent) => ({
    event_id: e.eventId, purchase_id: e.data.purchaseId, type: `stampede.purchase.${e.type}.v1`, payload: e.data, occurred_at: new Date(e.time),
  });

  const bought = accepted(buyer!.id);
  t.same((await settleOrders(pool, [bought, bought])).map((r) => r.status), ['confirmed', 'confirmed'], 'twice in one batch: one order');
  await settleOrders(pool, [bought]);
  t.same(await logOf([bought]), [rowOf(bought)], 'logged once, payload and time as they came');

  const cancelled = cancel(bought);
  t.same((await settleOrders(pool, [bought, cancelled])).map((r) => r.status), ['confirmed', 'cancelled'], 'a redelivery beside a new cancellation');
  await settleOrders(pool, [cancelled, bought]);
  t.same(await logOf([bought]), [rowOf(bought), rowOf(cancelled)], 'the cancellation logged once beside the acceptance');

  const late = accepted(buyer!.id);
  const early = cancel(late);
  early.time = late.time - 5;
  t.same((await settleOrders(pool, [early])).map((r) => r.status), ['cancelled'], 'a cancellation overtaking its acceptance');
  t.same((await settleOrders(pool, [late])).map((r) => r.status), ['cancelled'], 'the acceptance finds the cancelled order');
  await settleOrders(pool, [late, early]);
  t.same(await logOf([late]), [rowOf(early), rowOf(late)], 'both logged, once each');

  const { rows } = await pool.query<{ balance: number }>('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(rows[0]!.balance, 10_000, 'charged once and refunded once; the overtaken purchase never charged');
});

t.test('an event id already logged for another purchase fails the batch with a unique violation and writes nothing', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'event id clash' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 10_000, `credit:settlement-clash:${buyer!.id}`);
  const first = accepted(buyer!.id);
  await settleOrders(pool, [first]);
  const bystander = accepted(buyer!.id);
  const clash = { ...accepted(buyer!.id), eventId: first.eventId };
  await t.rejects(settleOrders(pool, [bystander, clash]), { code: '23505' });
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE purchase_id = ANY($1)', [[bystander.data.purchaseId, clash.data.purchaseId]]);
  t.equal(rows[0]!.n, 0, 'neither order written');
  const wallet = await pool.query<{ balance: number }>('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(wallet.rows[0]!.balance, 10_000 - PRICE, 'charged only for the first purchase');
  const logged = await pool.query<{ purchase_id: string }>('SELECT purchase_id FROM purchase_events WHERE event_id = $1', [first.eventId]);
  t.same(logged.rows, [{ purchase_id: first.data.purchaseId }], 'the logged event is untouched');
});

t.test('a purchase id with a tab, a line break or a backslash is stored exactly (orders, ledger and event log are written with COPY)', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'odd purchase' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 1_000, `credit:settlement-odd:${buyer!.id}`);
  const e = accepted(buyer!.id);
  e.data.purchaseId = `pur_odd\t${randomId(6)}\\N\n\r\\`;
  const [r] = await settleOrders(pool, [e]);
  t.equal(r!.status, 'confirmed');
  const { rows } = await pool.query<{ buyer_id: string; failure_reason: string | null; cancelled_at: Date | null }>(
    'SELECT buyer_id, failure_reason, cancelled_at FROM orders WHERE purchase_id = $1', [e.data.purchaseId]);
  t.same(rows, [{ buyer_id: buyer!.id, failure_reason: null, cancelled_at: null }], 'found by its exact id; SQL nulls stay null');
  const ledger = await pool.query<{ user_id: string; amount: number }>('SELECT user_id, amount FROM ledger_entries WHERE ref = $1', [`purchase:${e.data.purchaseId}`]);
  t.same(ledger.rows, [{ user_id: buyer!.id, amount: -PRICE }], 'the ledger ref too');
  const events = await pool.query<{ event_id: string; payload: unknown }>('SELECT event_id, payload FROM purchase_events WHERE purchase_id = $1', [e.data.purchaseId]);
  t.same(events.rows, [{ event_id: e.eventId, payload: e.data }], 'the event log too');
});
