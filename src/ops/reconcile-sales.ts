/**
 * Reconciling one sale: its live state in Redis against its orders in
 * Postgres, and its accepted purchases that are still unsettled.
 *
 * Redis decides and Postgres follows: an accepted purchase is `pending` in
 * Redis (with its buyer's in-flight marker) until the orders worker commits
 * its order and then applies the outcome to Redis (settlePurchases). So at
 * any instant Postgres may be AHEAD of Redis by the purchases the worker
 * committed and has not applied yet, and Redis holds purchases Postgres has
 * not seen yet (in the outbox, the relay or the queue). The comparison is
 * built to be exact despite both:
 *
 *   - Redis is read twice, before and after everything else; if the sale
 *     moved in between (its counters, in-flight markers, buyers' counts or
 *     outbox changed) the sale is busy and is looked at again, then skipped
 *     (not a finding). Between the two reads Redis stood still, so every
 *     difference Postgres shows is a settlement Redis has not followed yet;
 *   - those are counted per purchase: A, the units of purchases still
 *     pending in Redis whose order is confirmed in Postgres, and B, the units
 *     of orders cancelled in Postgres that Redis still holds confirmed. Then
 *     Redis `sold` must equal Postgres' confirmed units - A + B, exactly;
 *   - Redis alone must add up: available + reserved + sold = stock, reserved
 *     = the pending purchases' units, the buyers' counts = reserved + sold.
 *
 * A pending purchase with no order is in flight until it is older than the
 * stuck threshold: then it is stuck (reported). One whose order exists and
 * that Redis has not followed for longer than the threshold is repaired.
 */
import type { PoolClient } from '../platform/db/pool.js';
import { unwatch, type Redis } from '../platform/redis/client.js';
import { saleKeys, STOCK_CHANNEL } from '../sales/keys.js';
import { loadSale, settlePurchase } from '../sales/scripts.js';
import { findOrders, findSale, MAX_RECONCILED_CANCELLATIONS, saleLedger, type SaleRecord } from '../sales/repository.js';
import type { Finding, Skipped } from './findings.js';

/** Reads of a sale that moves under them before it is given up for this run. */
const SNAPSHOT_ATTEMPTS = 3;
const SNAPSHOT_RETRY_MS = 50;
/** A sale with more buyers than this is not read whole (its buyers' counts are one hash). */
export const MAX_SALE_BUYERS = 100_000;

interface LiveFields {
  status: string | null; stock: number; available: number; reserved: number; sold: number;
  startsAt: string | null; endsAt: string | null; limit: string | null; price: string | null; currency: string | null;
}

interface SaleSnapshot {
  /** Redis TIME (ms): purchases' ages are measured on the clock that stamped them. */
  now: number;
  live: LiveFields | undefined;
  /** buyer -> purchase id of their pending purchase. */
  inflight: Record<string, string>;
  bought: Record<string, string>;
  /** The newest outbox entry's id: any new purchase or cancellation request moves it. */
  lastEntry: string;
}

const LIVE_FIELDS = ['status', 'stock', 'available', 'reserved', 'sold', 'startsAt', 'endsAt', 'limit', 'price', 'currency'] as const;

/** One consistent read (a pipeline inside MULTI, unless watching: EXEC would end the WATCH). */
async function snapshotOf(redis: Redis, saleId: string, watching = false): Promise<SaleSnapshot | 'too_many_buyers'> {
  if ((await redis.hlen(saleKeys.bought(saleId))) > MAX_SALE_BUYERS) return 'too_many_buyers';
  const batch = watching ? redis.pipeline() : redis.multi();
  batch.time().hmget(saleKeys.sale(saleId), ...LIVE_FIELDS).hgetall(saleKeys.inflight(saleId)).hgetall(saleKeys.bought(saleId))
    .xrevrange(saleKeys.outbox(saleId), '+', '-', 'COUNT', 1);
  const replies = await batch.exec();
  if (!replies) throw new Error(`sale ${saleId}: the snapshot's transaction was aborted`);
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0]!;
  const [time, fields, inflight, bought, last] = replies.map(([, v]) => v) as [[string, string], (string | null)[], Record<string, string>, Record<string, string>, [string, string[]][]];
  const f = Object.fromEntries(LIVE_FIELDS.map((name, i) => [name, fields[i] ?? null])) as Record<(typeof LIVE_FIELDS)[number], string | null>;
  return {
    now: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000),
    live: f.status === null ? undefined : {
      status: f.status, stock: Number(f.stock), available: Number(f.available), reserved: Number(f.reserved), sold: Number(f.sold),
      startsAt: f.startsAt, endsAt: f.endsAt, limit: f.limit, price: f.price, currency: f.currency,
    },
    inflight, bought, lastEntry: last[0]?.[0] ?? '',
  };
}

const sameState = (a: SaleSnapshot, b: SaleSnapshot) =>
  JSON.stringify([a.live, a.inflight, a.bought, a.lastEntry]) === JSON.stringify([b.live, b.inflight, b.bought, b.lastEntry]);

interface PendingPurchase { purchaseId: string; buyerId: string; quantity: number; acceptedAt: number }

/** What a sale check decided from one stable reading. */
interface Reading {
  snap: SaleSnapshot;
  live: LiveFields;
  sale: SaleRecord;
  pending: PendingPurchase[];
  /** Orders of pending purchases (settled in Postgres, not yet in Redis). */
  settledPending: Map<string, { status: 'confirmed' | 'failed' | 'cancelled'; reason: string; settledAt: number }>;
  confirmedUnits: number;
  stock: number;
  /** Units of orders cancelled in Postgres that Redis still holds confirmed. */
  cancelledNotApplied: number;
  cancellationsRead: boolean;
}

export interface SaleCheckOptions {
  stuckAfterMs: number;
}

/** Checks one sale Redis knows; the findings of the `sales` and `stuck` checks, repaired where provably safe. */
export async function reconcileSale(db: PoolClient, redis: Redis, saleId: string, o: SaleCheckOptions): Promise<{ findings: Finding[]; skipped?: Skipped }> {
  const reading = await readStable(db, redis, saleId);
  if (typeof reading === 'string') return reading === 'gone' ? { findings: [] } : { findings: [], skipped: { subject: saleId, why: reading } };
  if (reading === undefined) {
    return { findings: [{ check: 'sales', subject: saleId, code: 'sale_unknown_to_postgres', message: `sale ${saleId} is in Redis but not in Postgres`, details: {}, repaired: false, action: 'none: Postgres is the record; nothing can be rebuilt from it' }] };
  }
  const findings: Finding[] = [];
  findings.push(...(await stuckPurchases(redis, saleId, reading, o.stuckAfterMs)));
  const { live } = reading;

  // Terms: Redis decides by them, Postgres holds them (loadSale refreshes them, never the counters).
  const terms = { status: reading.sale.status, startsAt: String(reading.sale.startsAt), endsAt: String(reading.sale.endsAt), limit: String(reading.sale.perBuyerLimit), price: String(reading.sale.unitPrice), currency: reading.sale.currency };
  const termsDiffer = (Object.keys(terms) as (keyof typeof terms)[]).filter((k) => live[k] !== terms[k]);
  if (termsDiffer.length > 0) {
    await loadSale(redis, reading.sale, 0);
    findings.push({
      check: 'sales', subject: saleId, code: 'terms_differ', message: `sale ${saleId}: Redis decides by other terms than Postgres holds (${termsDiffer.join(', ')})`,
      details: Object.fromEntries(termsDiffer.map((k) => [k, { redis: live[k], postgres: terms[k] }])), repaired: true,
      action: 'terms loaded again from Postgres (loadSale: the counters are not touched)',
    });
  }

  const counters = counterFindings(saleId, reading);
  if (counters.length === 0) return { findings };
  const repair = await repairCounters(db, redis, saleId, reading);
  for (const f of counters) findings.push({ ...f, repaired: repair.repaired, action: repair.action });
  return { findings };
}

/** Reads Redis, then Postgres, then Redis again, until Redis stood still across the Postgres reads. */
async function readStable(db: PoolClient, redis: Redis, saleId: string): Promise<Reading | undefined | 'gone' | string> {
  for (let attempt = 1; attempt <= SNAPSHOT_ATTEMPTS; attempt++) {
    const snap = await snapshotOf(redis, saleId);
    if (snap === 'too_many_buyers') return `more than ${MAX_SALE_BUYERS.toLocaleString('en')} buyers: not read whole`;
    if (!snap.live) return 'gone';
    const sale = await findSale(db, saleId);
    if (!sale) return undefined;
    const pending = await pendingPurchases(redis, saleId, snap.inflight);
    const orders = await findOrders(db, pending.map((p) => p.purchaseId));
    const ledger = (await saleLedger(db, saleId))!;
    const cancelledStatus = await purchaseStatuses(redis, saleId, ledger.cancelled.map((c) => c.purchaseId));
    const again = await snapshotOf(redis, saleId);
    if (again !== 'too_many_buyers' && sameState(snap, again)) {
      return {
        snap, live: snap.live, sale, pending,
        settledPending: new Map(orders.map((order) => [order.purchaseId, { status: order.status, reason: order.reason, settledAt: order.settledAt }])),
        confirmedUnits: ledger.confirmedUnits, stock: ledger.stock,
        cancelledNotApplied: ledger.cancelled.reduce((n, c, i) => n + (cancelledStatus[i] === 'confirmed' ? c.quantity : 0), 0),
        cancellationsRead: ledger.cancelledTotal <= MAX_RECONCILED_CANCELLATIONS,
      };
    }
    await new Promise((r) => setTimeout(r, SNAPSHOT_RETRY_MS));
  }
  return `busy: it changed under ${SNAPSHOT_ATTEMPTS} readings in a row (looked at again next run)`;
}

async function pendingPurchases(redis: Redis, saleId: string, inflight: Record<string, string>): Promise<PendingPurchase[]> {
  const entries = Object.entries(inflight);
  if (entries.length === 0) return [];
  const p = redis.pipeline();
  for (const [, purchaseId] of entries) p.hmget(saleKeys.purchase(saleId, purchaseId), 'quantity', 'createdAt');
  const replies = (await p.exec()) ?? [];
  return entries.map(([buyerId, purchaseId], i) => {
    const [quantity, createdAt] = (replies[i]?.[1] ?? []) as (string | null)[];
    return { purchaseId, buyerId, quantity: Number(quantity ?? 0), acceptedAt: Number(createdAt ?? 0) };
  });
}

async function purchaseStatuses(redis: Redis, saleId: string, purchaseIds: string[]): Promise<(string | null)[]> {
  if (purchaseIds.length === 0) return [];
  const p = redis.pipeline();
  for (const id of purchaseIds) p.hget(saleKeys.purchase(saleId, id), 'status');
  return ((await p.exec()) ?? []).map(([, v]) => (v as string | null) ?? null);
}

/**
 * The `stuck` check: pending purchases older than the threshold. One whose
 * order Postgres has is a settlement Redis did not follow: applying it is
 * exactly the orders worker's own last step (settlePurchases, which moves a
 * purchase by its stored status, once), so if the worker applies it too,
 * the second is a no-op. One with no order is reported: failing it here
 * could race its settlement, and which of the two wins decides money.
 */
async function stuckPurchases(redis: Redis, saleId: string, r: Reading, stuckAfterMs: number): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const p of r.pending) {
    const ageMs = r.snap.now - p.acceptedAt;
    if (ageMs < stuckAfterMs) continue;
    const details = { saleId, buyerId: p.buyerId, quantity: p.quantity, acceptedAt: new Date(p.acceptedAt).toISOString(), ageMs };
    const order = r.settledPending.get(p.purchaseId);
    if (order) {
      const outcome = await settlePurchase(redis, saleId, p.purchaseId, order.status, order.reason, order.settledAt);
      findings.push({
        check: 'stuck', subject: p.purchaseId, code: 'settlement_not_applied',
        message: `purchase ${p.purchaseId} is ${order.status} in Postgres, still pending in Redis ${Math.round(ageMs / 1000)} s after its acceptance`,
        details: { ...details, postgres: order.status }, repaired: outcome.code >= 0,
        action: outcome.code >= 0 ? `Postgres' outcome (${order.status}) applied to Redis, as the orders worker does after its commit` : 'none: Redis no longer knows the purchase',
      });
    } else {
      findings.push({
        check: 'stuck', subject: p.purchaseId, code: 'purchase_stuck',
        message: `purchase ${p.purchaseId} was accepted ${Math.round(ageMs / 1000)} s ago and is neither settled nor failed`,
        details, repaired: false,
        action: 'none: the reservation deadline fails it through settlement (STAMPEDE_RESERVATION_DEADLINE_MS); meanwhile look for it in the outbox lag (stampede_outbox_oldest_age_seconds), the queues and the dead letters',
      });
    }
  }
  return findings;
}

type CounterFinding = Omit<Finding, 'repaired' | 'action'>;

function counterFindings(saleId: string, r: Reading): CounterFinding[] {
  const { live } = r;
  const out: CounterFinding[] = [];
  const finding = (code: string, message: string, details: Record<string, unknown>) => out.push({ check: 'sales', subject: saleId, code, message: `sale ${saleId}: ${message}`, details });
  const redis = { stock: live.stock, available: live.available, reserved: live.reserved, sold: live.sold };
  if (live.available + live.reserved + live.sold !== live.stock || live.available < 0 || live.reserved < 0 || live.sold < 0 || live.sold > live.stock) {
    finding('counters_inconsistent', 'its Redis counters do not add up (available + reserved + sold = stock, none negative)', { redis });
  }
  const pendingUnits = r.pending.reduce((n, p) => n + p.quantity, 0);
  if (live.reserved !== pendingUnits) finding('reserved_differs', `Redis reserves ${live.reserved} units, its pending purchases hold ${pendingUnits}`, { redis, pendingUnits, pendingPurchases: r.pending.length });
  const held = Object.values(r.snap.bought).reduce((n, q) => n + Number(q), 0);
  if (held !== live.reserved + live.sold) finding('bought_differs', `its buyers' counts add up to ${held} units, reserved + sold is ${live.reserved + live.sold}`, { redis, buyersHold: held });
  if (live.stock !== r.stock) finding('stock_differs', `Redis stock ${live.stock}, Postgres stock ${r.stock}`, { redis, postgres: { stock: r.stock } });
  // Postgres ahead of Redis by what the worker committed and has not applied yet (A and B above).
  const confirmedNotApplied = r.pending.reduce((n, p) => n + (r.settledPending.get(p.purchaseId)?.status === 'confirmed' ? p.quantity : 0), 0);
  const expectedSold = r.confirmedUnits - confirmedNotApplied + r.cancelledNotApplied;
  if (live.sold !== expectedSold) {
    finding('sold_differs', `Redis sold ${live.sold}, Postgres' confirmed orders say ${expectedSold}`, {
      redis, postgres: { confirmedUnits: r.confirmedUnits }, inTransit: { confirmedNotApplied, cancelledNotApplied: r.cancelledNotApplied }, expectedSold,
    });
  }
  return out;
}

/**
 * Sets the sale's counters and buyers' counts from Postgres, only when that
 * is provably what Redis should hold:
 *   - no purchase of the sale is pending in Redis (nothing accepted will
 *     move the counters when it settles), and every cancellation Postgres
 *     has is applied in Redis (none will move them either); a cancellation
 *     still on its way finds its purchase confirmed in both, and moves both;
 *   - the sale's Postgres row is locked (FOR UPDATE, as adding stock does),
 *     so its stock cannot change until the repair is written;
 *   - the sale's keys are WATCHed from before the final reading, so the
 *     repair is written only if no script touched the sale meanwhile.
 * Then Redis must hold sold = confirmed units, reserved = 0, available =
 * stock - sold, and each buyer's count = their confirmed units.
 */
/** The keys a counter repair WATCHes and writes: one slot (the sale's hash tag), as WATCH and MULTI need on a cluster. */
export const repairKeys = (saleId: string): string[] => [saleKeys.sale(saleId), saleKeys.inflight(saleId), saleKeys.bought(saleId)];

async function repairCounters(db: PoolClient, redis: Redis, saleId: string, r: Reading): Promise<{ repaired: boolean; action: string }> {
  const refused = (why: string) => ({ repaired: false, action: `not repaired: ${why}` });
  if (r.pending.length > 0) return refused(`${r.pending.length} purchase(s) in flight; the next run looks again`);
  if (!r.cancellationsRead) return refused(`more than ${MAX_RECONCILED_CANCELLATIONS.toLocaleString('en')} cancelled orders to read back`);
  if (r.cancelledNotApplied > 0) return refused('cancellations settled in Postgres are not applied in Redis yet');
  const keys = repairKeys(saleId);
  await db.query('BEGIN');
  try {
    await redis.watch(...keys);
    const snap = await snapshotOf(redis, saleId, true);
    if (snap === 'too_many_buyers' || !snap.live || Object.keys(snap.inflight).length > 0) return refused('the sale changed; the next run looks again');
    const ledger = (await saleLedger(db, saleId, true))!;
    const statuses = await purchaseStatuses(redis, saleId, ledger.cancelled.map((c) => c.purchaseId));
    if (statuses.includes('confirmed')) return refused('cancellations settled in Postgres are not applied in Redis yet');
    if (ledger.confirmedUnits > ledger.stock) return refused(`Postgres holds ${ledger.confirmedUnits} confirmed units of a stock of ${ledger.stock}`);
    const available = ledger.stock - ledger.confirmedUnits;
    const multi = redis.multi()
      .hset(saleKeys.sale(saleId), { stock: ledger.stock, available, reserved: 0, sold: ledger.confirmedUnits })
      .del(saleKeys.bought(saleId));
    if (ledger.confirmedByBuyer.length > 0) multi.hset(saleKeys.bought(saleId), Object.fromEntries(ledger.confirmedByBuyer.map((b) => [b.buyerId, b.quantity])));
    const written = await multi.exec();
    if (written === null) return refused('the sale changed while it was repaired; nothing was written, the next run looks again');
    const failed = written.find(([err]) => err);
    if (failed) throw failed[0]!;
    // A sold-out sale has stock again: api nodes drop their sold-out cache at once.
    if (snap.live.available <= 0 && available > 0) await redis.publish(STOCK_CHANNEL, saleId);
    return { repaired: true, action: `counters set from Postgres: stock ${ledger.stock}, available ${available}, reserved 0, sold ${ledger.confirmedUnits}; buyers' counts from their confirmed orders` };
  } finally {
    await unwatch(redis);
    await db.query('COMMIT');
  }
}
