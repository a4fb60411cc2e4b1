/**
 * Settles a batch of purchase events in ONE Postgres transaction:
 *   - the wallets involved are locked (in key order, so batches never deadlock);
 *   - an accepted purchase becomes an order row keyed by its purchase id, and
 *     a wallet debit with a ledger entry when the balance covers it, or a
 *     failed order when it does not (INSUFFICIENT_FUNDS) or its buyer is no
 *     user (UNKNOWN_BUYER);
 *   - a cancellation refunds a confirmed order, or records a cancelled order
 *     when it overtook its own acceptance;
 *   - an expiry (the reservation deadline passed, or the worker gave up on
 *     the purchase) records a failed order unless the purchase has one: the
 *     order row is the one place a late settlement and its expiry meet, so
 *     exactly one of them decides the purchase, whichever commits first.
 * Each event's result carries its order as stored and what was refunded
 * (read back from the ledger), so the buyer is told the settled outcome
 * (announcements.ts), the same on every redelivery.
 * A redelivered event finds its order row and changes nothing: the answer is
 * the status already stored. Orders, ledger entries and logged events are
 * plain INSERTs (COPY) under unique keys (purchase id, ledger ref, event id),
 * so a concurrent writer of the same purchase makes the batch fail with a
 * unique violation and retry; it never doubles it.
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import { inTransaction } from '../platform/db/pool.js';
import { PermanentError } from '../platform/messaging/consumer.js';
import type { PurchaseEvent } from './events.js';
import {
  cancelConfirmedOrders, findSales, insertLedgerEntries, insertOrders, knownUsers, lockOrders, lockWallets, loggedEvents,
  logPurchaseEvents, refundsOf, setWalletBalances, type LedgerEntry, type OrderRecord, type OrderStatus, type WalletBalance,
} from './repository.js';

export interface SettlementResult {
  eventId: string;
  purchaseId: string;
  saleId: string;
  status: OrderStatus;
  reason: string;
  settledAt: number;
  /** The purchase's order after this event, as stored. */
  order: OrderRecord;
  /** What went back to the buyer's wallet for a cancelled order (0: it had not been charged; 0 for any other status). */
  refunded: number;
}

/** The event contradicts its sale's terms (or names no sale): no retry can settle it. */
export class UnknownSaleTermsError extends PermanentError {}

/** Settles the events in one transaction; one result per event, in their order. */
export function settleOrders(pool: Pool, events: PurchaseEvent[]): Promise<SettlementResult[]> {
  return inTransaction(pool, async (tx) => {
    await checkSaleTerms(tx, events);
    const wallets = await lockWallets(tx, walletsOf(events));
    const unknownBuyers = await walletlessUnknownBuyers(tx, events, wallets);
    const orders = await lockOrders(tx, [...new Set(events.map((e) => e.data.purchaseId))]);
    // Every logged event was written with its order, in one transaction: an
    // event can be logged already only if its purchase had an order.
    const ordered = new Set(orders.map((o) => o.purchaseId));
    const logged = await loggedEvents(tx, events.filter((e) => ordered.has(e.data.purchaseId)).map((e) => e.eventId));
    const settlement = decideSettlement(events, { wallets, orders, logged, unknownBuyers, now: Date.now() });
    await writeSettlement(tx, settlement);
    // A redelivered cancellation's order does not say whether it had been paid: its refund entry does.
    const refunds = await refundsOf(tx, [...new Set(settlement.results.filter((r) => r.status === 'cancelled').map((r) => r.purchaseId))]);
    return settlement.results.map((r) => (r.status === 'cancelled' ? { ...r, refunded: refunds.get(r.purchaseId) ?? 0 } : r));
  });
}

/**
 * Every event must match its sale's terms. This replaces the orders->sales
 * foreign key (whose per-row lock serialised settlement on the sale row) and
 * checks more: the price and currency charged are the sale's own.
 */
async function checkSaleTerms(tx: PoolClient, events: PurchaseEvent[]): Promise<void> {
  const sales = new Map((await findSales(tx, [...new Set(events.map((e) => e.data.saleId))])).map((s) => [s.id, s]));
  for (const { type, data } of events) {
    // An expiry moves no money and must settle whatever made its purchase unsettleable (a sale whose terms differ, too).
    if (type === 'expired') continue;
    const sale = sales.get(data.saleId);
    if (!sale || sale.unitPrice !== data.unitPrice || sale.currency !== data.currency) {
      throw new UnknownSaleTermsError(`purchase ${data.purchaseId}: sale ${data.saleId} unknown or its terms differ from the event's`);
    }
  }
}

const walletKey = (w: { userId: string; currency: string }) => `${w.userId}|${w.currency}`;

/** The wallets the events charge or refund, each once, in key order (an expiry touches none). */
function walletsOf(events: PurchaseEvent[]): { userId: string; currency: string }[] {
  const wallets = new Map(events.filter((e) => e.type !== 'expired').map((e) => {
    const wallet = { userId: e.data.buyerId, currency: e.data.currency };
    return [walletKey(wallet), wallet];
  }));
  return [...wallets.keys()].sort().map((key) => wallets.get(key)!);
}

/**
 * The buyers of accepted purchases who are no user. A buyer with a wallet
 * exists (wallets reference users); the others are looked up, in one query
 * for the batch. Their purchases fail (UNKNOWN_BUYER) rather than fail the
 * batch: a token signed for an id that is no user reached the worker (the
 * api refuses them, but a node may not know yet), and retrying it could
 * never settle it.
 */
async function walletlessUnknownBuyers(tx: PoolClient, events: PurchaseEvent[], wallets: WalletBalance[]): Promise<Set<string>> {
  const held = new Set(wallets.map(walletKey));
  const walletless = [...new Set(events
    .filter((e) => e.type === 'accepted' && !held.has(walletKey({ userId: e.data.buyerId, currency: e.data.currency })))
    .map((e) => e.data.buyerId))];
  if (walletless.length === 0) return new Set();
  const known = await knownUsers(tx, walletless);
  return new Set(walletless.filter((id) => !known.has(id)));
}

/** What the database holds before the batch, as settlement reads it. */
export interface SettlementState {
  /** The events' wallets that exist (locked). */
  wallets: WalletBalance[];
  /** The events' purchases that have an order already (locked). */
  orders: OrderRecord[];
  /** Events the event log holds already. */
  logged: Set<string>;
  /** Buyers of the events who are no user. */
  unknownBuyers: Set<string>;
  /** When this settlement happens (ms). */
  now: number;
}

/** What to write, and what to answer. */
export interface SettlementPlan {
  results: SettlementResult[];
  newOrders: OrderRecord[];
  /** Confirmed orders to cancel (their refunds are in `ledger`). */
  refunds: string[];
  ledger: LedgerEntry[];
  /** Wallets whose balance changed, with their new balance. */
  balances: WalletBalance[];
  /** Events the event log does not hold yet, each once. */
  newEvents: PurchaseEvent[];
  now: number;
}

/**
 * Decides each event in order, over the state read: later events of the
 * batch see the effect of earlier ones (an acceptance and its cancellation in
 * one batch end cancelled and refunded). Pure: writes nothing.
 *   accepted, no order        -> confirmed (debit) if the balance covers it, else failed
 *                                (INSUFFICIENT_FUNDS; UNKNOWN_BUYER when the buyer is no user)
 *   accepted, an order        -> the order's status (a redelivery)
 *   cancel, no order          -> cancelled, nothing charged (it overtook its acceptance)
 *   cancel, a confirmed order -> cancelled, refunded
 *   cancel, any other order   -> the order's status
 *   expiry, no order          -> failed with the expiry's reason, nothing charged
 *   expiry, an order          -> the order's status (settlement came first)
 */
export function decideSettlement(events: PurchaseEvent[], state: SettlementState): SettlementPlan {
  const { now } = state;
  const balances = new Map(state.wallets.map((w) => [walletKey(w), w.balance]));
  const orders = new Map(state.orders.map((o) => [o.purchaseId, o]));
  const out: SettlementPlan = { results: [], newOrders: [], refunds: [], ledger: [], balances: [], newEvents: [], now };

  for (const e of events) {
    const purchase = e.data;
    const wallet = walletKey({ userId: purchase.buyerId, currency: purchase.currency });
    const amount = purchase.quantity * purchase.unitPrice;
    if (!Number.isSafeInteger(amount) || amount < 0 || purchase.quantity <= 0) {
      throw new Error(`purchase ${purchase.purchaseId}: refusing to settle quantity ${purchase.quantity} x price ${purchase.unitPrice}`);
    }
    const known = orders.get(purchase.purchaseId);
    let status: OrderStatus;
    let reason = '';
    let isNew = false;

    if (known && (e.type !== 'cancel_requested' || known.status !== 'confirmed')) {
      status = known.status;
      reason = known.reason;
    } else if (known) {
      status = 'cancelled';
      balances.set(wallet, (balances.get(wallet) ?? 0) + known.amount);
      if (known.amount > 0) out.ledger.push({ ref: `refund:${purchase.purchaseId}`, userId: purchase.buyerId, currency: purchase.currency, amount: known.amount, kind: 'refund' });
      out.refunds.push(purchase.purchaseId);
    } else if (e.type === 'cancel_requested') {
      status = 'cancelled';
      isNew = true;
    } else if (e.type === 'expired') {
      status = 'failed';
      reason = e.reason;
      isNew = true;
    } else if (state.unknownBuyers.has(purchase.buyerId)) {
      status = 'failed';
      reason = 'UNKNOWN_BUYER';
      isNew = true;
    } else {
      const balance = balances.get(wallet) ?? 0;
      isNew = true;
      if (balance >= amount) {
        status = 'confirmed';
        balances.set(wallet, balance - amount);
        if (amount > 0) out.ledger.push({ ref: `purchase:${purchase.purchaseId}`, userId: purchase.buyerId, currency: purchase.currency, amount: -amount, kind: 'purchase' });
      } else {
        status = 'failed';
        reason = 'INSUFFICIENT_FUNDS';
      }
    }
    const settledAt = known?.settledAt ?? now;
    const order: OrderRecord = {
      purchaseId: purchase.purchaseId, saleId: purchase.saleId, buyerId: purchase.buyerId, quantity: purchase.quantity,
      unitPrice: purchase.unitPrice, currency: purchase.currency, acceptedAt: purchase.acceptedAt, amount, status, reason,
      settledAt, cancelledAt: status === 'cancelled' ? (known?.cancelledAt ?? now) : null,
    };
    if (isNew) out.newOrders.push(order);
    orders.set(purchase.purchaseId, order);
    out.results.push({ eventId: e.eventId, purchaseId: purchase.purchaseId, saleId: purchase.saleId, status, reason, settledAt, order, refunded: 0 });
  }

  // Only wallets that exist are written: one that does not counts as 0, so it
  // was at most charged nothing.
  for (const w of state.wallets) {
    const balance = balances.get(walletKey(w))!;
    if (balance !== w.balance) out.balances.push({ ...w, balance });
  }
  const seen = new Set(state.logged);
  for (const e of events) {
    if (seen.has(e.eventId)) continue;
    seen.add(e.eventId);
    out.newEvents.push(e);
  }
  return out;
}

/** Writes the settlement: orders, refunds, ledger, balances, then the event log. */
async function writeSettlement(tx: PoolClient, s: SettlementPlan): Promise<void> {
  // A purchase settled concurrently by another worker is a unique violation
  // (orders, ledger refs, event ids), which aborts this batch for a retry.
  await insertOrders(tx, s.newOrders);
  await cancelConfirmedOrders(tx, s.refunds, s.now);
  await insertLedgerEntries(tx, s.ledger);
  await setWalletBalances(tx, s.balances);
  await logPurchaseEvents(tx, s.newEvents);
}
