/**
 * All of the sales' SQL. Each table has one record type here, in the
 * domain's names; bigint columns arrive as numbers (src/platform/db/pool.ts)
 * and timestamps leave as milliseconds, so nothing above this file sees a
 * column name or a Date. The settlement statements run inside the settling
 * transaction (see settlement.ts for why each is shaped as it is).
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import { copyInto, tsv } from '../platform/db/copy.js';
import { PURCHASE_EVENT_TYPES, type PurchaseAcceptedData, type PurchaseEvent } from './events.js';

/** A pool or one of its clients (inside a transaction). */
type Db = Pick<Pool, 'query'>;

// ------------------------------------------------------------------ sales

/** What a sale offers: the item, its price, how many, and how many at most to one buyer. */
export interface SaleOffer {
  name: string;
  sku: string;
  unitPrice: number;
  currency: string;
  stock: number;
  perBuyerLimit: number;
}

/** One item of a bundle: what it is, its own price and how many of it one bundle holds. */
export interface BundleItem {
  name: string;
  unitPrice: number;
  quantity: number;
}

export type Discount = { type: 'flat'; amount: number } | { type: 'percentage'; basisPoints: number };

/** A bundle's price and how it was reached (bundles.ts priceBundle); `price` is the sale's unitPrice. */
export interface BundlePrice {
  items: BundleItem[];
  subtotal: number;
  discount: Discount | null;
  discountAmount: number;
  price: number;
}

/** A row of `sales`. */
export interface SaleRecord extends SaleOffer {
  /** A bundle sale's breakdown (its unitPrice is the bundle's price); null for a single item. */
  bundle: BundlePrice | null;
  /** Bought and seen only by the buyers on its list (sale_eligible_buyers). */
  private: boolean;
  /** The Redis slots its stock is split across (src/sales/shards.ts); 1 for most sales. */
  shards: number;
  id: string;
  /** null for a sale an operator created. */
  sellerId: string | null;
  startsAt: number;
  endsAt: number;
  status: 'open' | 'closed';
  createdAt: number;
}

interface SaleRow {
  id: string;
  seller_id: string | null;
  name: string;
  sku: string;
  unit_price: number;
  currency: string;
  stock: number;
  per_buyer_limit: number;
  starts_at: Date;
  ends_at: Date;
  status: 'open' | 'closed';
  created_at: Date;
  bundle: BundlePrice | null;
  private: boolean;
  shards: number;
}

const SALE_COLUMNS = 'id, seller_id, name, sku, unit_price, currency, stock, per_buyer_limit, starts_at, ends_at, status, created_at, bundle, private, shards';

function saleOf(r: SaleRow): SaleRecord {
  return {
    id: r.id, sellerId: r.seller_id, name: r.name, sku: r.sku, unitPrice: r.unit_price, currency: r.currency, stock: r.stock,
    perBuyerLimit: r.per_buyer_limit, startsAt: r.starts_at.getTime(), endsAt: r.ends_at.getTime(), status: r.status,
    createdAt: r.created_at.getTime(), bundle: r.bundle, private: r.private, shards: r.shards,
  };
}

export async function insertSale(db: Db, sale: Omit<SaleRecord, 'status' | 'createdAt'>): Promise<SaleRecord> {
  const { rows } = await db.query<SaleRow>(
    `INSERT INTO sales (id, seller_id, name, sku, unit_price, currency, stock, per_buyer_limit, starts_at, ends_at, bundle, private, shards)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ${SALE_COLUMNS}`,
    [sale.id, sale.sellerId, sale.name, sale.sku, sale.unitPrice, sale.currency, sale.stock, sale.perBuyerLimit,
      new Date(sale.startsAt), new Date(sale.endsAt), sale.bundle === null ? null : JSON.stringify(sale.bundle), sale.private, sale.shards],
  );
  return saleOf(rows[0]!);
}

// ------------------------------------------------------- private sales

/** Replaces a private sale's eligible buyers (inside the caller's transaction). */
export async function replaceEligibleBuyers(db: Db, saleId: string, buyerIds: readonly string[]): Promise<void> {
  await db.query('DELETE FROM sale_eligible_buyers WHERE sale_id = $1', [saleId]);
  if (buyerIds.length > 0) {
    await db.query('INSERT INTO sale_eligible_buyers (sale_id, buyer_id) SELECT $1, unnest($2::text[])', [saleId, buyerIds]);
  }
}

export async function eligibleBuyersOf(db: Db, saleId: string): Promise<string[]> {
  const { rows } = await db.query<{ buyer_id: string }>('SELECT buyer_id FROM sale_eligible_buyers WHERE sale_id = $1 ORDER BY buyer_id', [saleId]);
  return rows.map((r) => r.buyer_id);
}

export async function isEligible(db: Db, saleId: string, buyerId: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM sale_eligible_buyers WHERE sale_id = $1 AND buyer_id = $2', [saleId, buyerId]);
  return (rowCount ?? 0) > 0;
}

/** Of `ids`, those that are not (undeleted) buyers. */
export async function notBuyers(db: Db, ids: readonly string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT c.id FROM unnest($1::text[]) AS c(id)
      WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.id AND u.kind = 'buyer' AND u.deleted_at IS NULL)`,
    [ids],
  );
  return new Set(rows.map((r) => r.id));
}

/** The open private sales the buyer may buy, by id, at most `max` after the id `after`. */
export async function eligibleOpenSales(db: Db, buyerId: string, page: { max: number; after: string | undefined }): Promise<SaleRecord[]> {
  const { rows } = await db.query<SaleRow>(
    `SELECT ${SALE_COLUMNS.split(', ').map((c) => `s.${c}`).join(', ')} FROM sale_eligible_buyers e JOIN sales s ON s.id = e.sale_id
     WHERE e.buyer_id = $1 AND s.private AND s.status = 'open' AND s.ends_at > now() AND ($3::text IS NULL OR s.id > $3)
     ORDER BY s.id LIMIT $2`,
    [buyerId, page.max, page.after ?? null],
  );
  return rows.map(saleOf);
}

export async function findSale(db: Db, saleId: string): Promise<SaleRecord | undefined> {
  const { rows } = await db.query<SaleRow>(`SELECT ${SALE_COLUMNS} FROM sales WHERE id = $1`, [saleId]);
  return rows[0] && saleOf(rows[0]);
}

/** The sale, its row locked until the transaction ends (stock changes are serialised on it). */
export async function lockSale(tx: PoolClient, saleId: string): Promise<SaleRecord | undefined> {
  const { rows } = await tx.query<SaleRow>(`SELECT ${SALE_COLUMNS} FROM sales WHERE id = $1 FOR UPDATE`, [saleId]);
  return rows[0] && saleOf(rows[0]);
}

export async function findSales(db: Db, saleIds: string[]): Promise<SaleRecord[]> {
  const { rows } = await db.query<SaleRow>(`SELECT ${SALE_COLUMNS} FROM sales WHERE id = ANY($1::text[])`, [saleIds]);
  return rows.map(saleOf);
}

/**
 * Sales that can still sell: with a page, the public ones by id, at most
 * `max` of them after the id `after`; without, all of them, private ones too.
 */
export async function openSales(db: Db, page?: { max: number; after: string | undefined }): Promise<SaleRecord[]> {
  const { rows } = page
    ? await db.query<SaleRow>(
      `SELECT ${SALE_COLUMNS} FROM sales WHERE status = 'open' AND ends_at > now() AND NOT private AND ($2::text IS NULL OR id > $2)
       ORDER BY id LIMIT $1`,
      [page.max, page.after ?? null],
    )
    : await db.query<SaleRow>(`SELECT ${SALE_COLUMNS} FROM sales WHERE status = 'open' AND ends_at > now()`);
  return rows.map(saleOf);
}

/** The `limit` open sales that started last (the operators' board: the drop going on now first). */
export async function recentOpenSales(db: Db, limit: number): Promise<SaleRecord[]> {
  const { rows } = await db.query<SaleRow>(
    `SELECT ${SALE_COLUMNS} FROM sales WHERE status = 'open' AND ends_at > now() AND starts_at <= now() ORDER BY starts_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return rows.map(saleOf);
}

export async function addToStock(db: Db, saleId: string, units: number): Promise<void> {
  await db.query('UPDATE sales SET stock = stock + $2 WHERE id = $1', [saleId, units]);
}

/** Closes the sale (the first close time stays) and returns it. */
export async function closeSale(db: Db, saleId: string): Promise<SaleRecord | undefined> {
  const { rows } = await db.query<SaleRow>(
    `UPDATE sales SET status = 'closed', closed_at = coalesce(closed_at, now()) WHERE id = $1 RETURNING ${SALE_COLUMNS}`,
    [saleId],
  );
  return rows[0] && saleOf(rows[0]);
}

// ----------------------------------------------------------------- orders

export type OrderStatus = 'confirmed' | 'failed' | 'cancelled';

/** A row of `orders`: a settled purchase (the record outlives Redis). */
export interface OrderRecord extends PurchaseAcceptedData {
  amount: number;
  status: OrderStatus;
  /** Why it failed ('' when it did not). */
  reason: string;
  settledAt: number;
  cancelledAt: number | null;
}

interface OrderRow {
  purchase_id: string;
  sale_id: string;
  buyer_id: string;
  quantity: number;
  unit_price: number;
  amount: number;
  currency: string;
  status: OrderStatus;
  failure_reason: string | null;
  accepted_at: Date;
  settled_at: Date;
  cancelled_at: Date | null;
}

const ORDER_COLUMNS = 'purchase_id, sale_id, buyer_id, quantity, unit_price, amount, currency, status, failure_reason, accepted_at, settled_at, cancelled_at';

function orderOf(r: OrderRow): OrderRecord {
  return {
    purchaseId: r.purchase_id, saleId: r.sale_id, buyerId: r.buyer_id, quantity: r.quantity, unitPrice: r.unit_price,
    amount: r.amount, currency: r.currency, status: r.status, reason: r.failure_reason ?? '', acceptedAt: r.accepted_at.getTime(),
    settledAt: r.settled_at.getTime(), cancelledAt: r.cancelled_at ? r.cancelled_at.getTime() : null,
  };
}

export async function findOrder(db: Db, purchaseId: string): Promise<OrderRecord | undefined> {
  const { rows } = await db.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE purchase_id = $1`, [purchaseId]);
  return rows[0] && orderOf(rows[0]);
}

/** Units each buyer holds in confirmed orders of the sale (what Redis must count again when it reloads it). */
export async function confirmedUnitsByBuyer(db: Db, saleId: string): Promise<{ buyerId: string; quantity: number }[]> {
  const { rows } = await db.query<{ buyer_id: string; quantity: number }>(
    `SELECT buyer_id, sum(quantity)::int AS quantity FROM orders WHERE sale_id = $1 AND status = 'confirmed' GROUP BY buyer_id`,
    [saleId],
  );
  return rows.map((r) => ({ buyerId: r.buyer_id, quantity: r.quantity }));
}

// ------------------------------------------------- audit (see audit.ts)

/** The sale's orders, confirmed orders and units, and purchase debits in the ledger. */
export async function countOrders(db: Db, saleId: string): Promise<{ orders: number; confirmedOrders: number; confirmedUnits: number; purchaseDebits: number }> {
  const { rows } = await db.query<{ orders: number; confirmed: number; units: number; debits: number }>(
    `SELECT count(*)::int AS orders,
            count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed,
            coalesce(sum(quantity) FILTER (WHERE status = 'confirmed'), 0)::int AS units,
            (SELECT count(*)::int FROM ledger_entries l JOIN orders o2 ON l.ref = 'purchase:' || o2.purchase_id WHERE o2.sale_id = $1) AS debits
       FROM orders WHERE sale_id = $1`,
    [saleId],
  );
  const counts = rows[0]!;
  return { orders: counts.orders, confirmedOrders: counts.confirmed, confirmedUnits: counts.units, purchaseDebits: counts.debits };
}

export async function countNegativeWallets(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM wallets WHERE balance < 0');
  return rows[0]!.n;
}

/** Buyers whose confirmed orders of the sale hold more than the limit. */
export async function countBuyersOverLimit(db: Db, saleId: string, perBuyerLimit: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT buyer_id FROM orders WHERE sale_id = $1 AND status = 'confirmed'
       GROUP BY buyer_id HAVING sum(quantity) > $2) x`,
    [saleId, perBuyerLimit],
  );
  return rows[0]!.n;
}

// ------------------------------------------- settlement (one transaction)

/** The orders of these purchases that exist, their rows locked (in purchase id order). */
export async function lockOrders(tx: PoolClient, purchaseIds: string[]): Promise<OrderRecord[]> {
  const { rows } = await tx.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM orders WHERE purchase_id = ANY($1::text[]) ORDER BY purchase_id FOR UPDATE`,
    [purchaseIds],
  );
  return rows.map(orderOf);
}

/** New orders, by COPY: an order that exists already is a unique violation, which aborts the transaction. */
export async function insertOrders(tx: PoolClient, orders: OrderRecord[]): Promise<void> {
  if (orders.length === 0) return;
  const at = (ms: number | null) => (ms === null ? '\\N' : new Date(ms).toISOString());
  let rows = '';
  for (const o of orders) {
    rows += `${tsv(o.purchaseId)}\t${tsv(o.saleId)}\t${tsv(o.buyerId)}\t${o.quantity}\t${o.unitPrice}\t${o.amount}\t${tsv(o.currency)}\t${o.status}\t${tsv(o.reason || null)}\t${at(o.acceptedAt)}\t${at(o.settledAt)}\t${at(o.cancelledAt)}\n`;
  }
  await copyInto(tx, 'COPY orders (purchase_id, sale_id, buyer_id, quantity, unit_price, amount, currency, status, failure_reason, accepted_at, settled_at, cancelled_at) FROM STDIN', rows);
}

/** Cancels these orders if they are confirmed (the refunds are the caller's ledger entries). */
export async function cancelConfirmedOrders(tx: PoolClient, purchaseIds: string[], at: number): Promise<void> {
  if (purchaseIds.length === 0) return;
  await tx.query(`UPDATE orders SET status = 'cancelled', cancelled_at = $2 WHERE purchase_id = ANY($1::text[]) AND status = 'confirmed'`, [purchaseIds, new Date(at)]);
}

/** A row of `wallets`: one buyer's money in one currency. */
export interface WalletBalance {
  userId: string;
  currency: string;
  balance: number;
}

/**
 * The wallets that exist among these, their rows locked in (user, currency)
 * order: two transactions locking overlapping wallets queue, never deadlock.
 */
export async function lockWallets(tx: PoolClient, wallets: { userId: string; currency: string }[]): Promise<WalletBalance[]> {
  if (wallets.length === 0) return [];
  const { rows } = await tx.query<{ user_id: string; currency: string; balance: number }>(
    `SELECT w.user_id, w.currency, w.balance FROM wallets w
       JOIN unnest($1::text[], $2::text[]) AS k(user_id, currency)
         ON w.user_id = k.user_id AND w.currency = k.currency
      ORDER BY w.user_id, w.currency FOR UPDATE OF w`,
    [wallets.map((w) => w.userId), wallets.map((w) => w.currency)],
  );
  return rows.map((r) => ({ userId: r.user_id, currency: r.currency, balance: r.balance }));
}

export async function setWalletBalances(tx: PoolClient, wallets: WalletBalance[]): Promise<void> {
  if (wallets.length === 0) return;
  await tx.query(
    `UPDATE wallets w SET balance = v.balance, updated_at = now()
       FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(user_id, currency, balance)
      WHERE w.user_id = v.user_id AND w.currency = v.currency`,
    [wallets.map((w) => w.userId), wallets.map((w) => w.currency), wallets.map((w) => w.balance)],
  );
}

/** Which of these user ids are users. */
export async function knownUsers(tx: PoolClient, userIds: string[]): Promise<Set<string>> {
  const { rows } = await tx.query<{ id: string }>('SELECT id FROM users WHERE id = ANY($1::text[])', [userIds]);
  return new Set(rows.map((r) => r.id));
}

/** A row of `ledger_entries` that settlement writes: a purchase's debit or its refund. */
export interface LedgerEntry {
  /** Unique: `purchase:<purchaseId>` or `refund:<purchaseId>`. */
  ref: string;
  userId: string;
  currency: string;
  amount: number;
  kind: 'purchase' | 'refund';
}

/** By COPY, like the orders: a ref written already aborts the transaction. */
export async function insertLedgerEntries(tx: PoolClient, entries: LedgerEntry[]): Promise<void> {
  if (entries.length === 0) return;
  let rows = '';
  for (const l of entries) rows += `${tsv(l.ref)}\t${tsv(l.userId)}\t${tsv(l.currency)}\t${l.amount}\t${l.kind}\n`;
  await copyInto(tx, 'COPY ledger_entries (ref, user_id, currency, amount, kind) FROM STDIN', rows);
}

/** What was refunded to the wallet for each of these purchases that had a refund (its `refund:<purchaseId>` entry). */
export async function refundsOf(tx: PoolClient, purchaseIds: string[]): Promise<Map<string, number>> {
  if (purchaseIds.length === 0) return new Map();
  const { rows } = await tx.query<{ ref: string; amount: number }>(
    'SELECT ref, amount FROM ledger_entries WHERE ref = ANY($1::text[])', [purchaseIds.map((id) => `refund:${id}`)],
  );
  return new Map(rows.map((r) => [r.ref.slice('refund:'.length), r.amount]));
}

/** Which of these events the event log (`purchase_events`) holds. */
export async function loggedEvents(tx: PoolClient, eventIds: string[]): Promise<Set<string>> {
  if (eventIds.length === 0) return new Set();
  const { rows } = await tx.query<{ event_id: string }>('SELECT event_id FROM purchase_events WHERE event_id = ANY($1::text[])', [eventIds]);
  return new Set(rows.map((r) => r.event_id));
}

/** Appends events to the event log (`purchase_events`: type, payload and time as they came), by COPY: a logged event id aborts the transaction. */
export async function logPurchaseEvents(tx: PoolClient, events: PurchaseEvent[]): Promise<void> {
  if (events.length === 0) return;
  let rows = '';
  for (const e of events) {
    rows += `${tsv(e.eventId)}\t${tsv(e.data.purchaseId)}\t${tsv(e.data.saleId)}\t${PURCHASE_EVENT_TYPES[e.type]}\t${tsv(JSON.stringify(e.data))}\t${new Date(e.time).toISOString()}\n`;
  }
  await copyInto(tx, 'COPY purchase_events (event_id, purchase_id, sale_id, type, payload, occurred_at) FROM STDIN', rows);
}

// ---------------------------------- reconciliation (src/ops/reconcile-sales.ts)

/** Most cancelled orders of one sale reconciliation reads back from Redis; a sale with more is compared but not repaired. */
export const MAX_RECONCILED_CANCELLATIONS = 10_000;

/** What Postgres holds of a sale, read in ONE statement (one snapshot): its stock, its confirmed units (in total and per buyer) and its cancelled orders. */
export interface SaleLedger {
  stock: number;
  confirmedUnits: number;
  confirmedByBuyer: { buyerId: string; quantity: number }[];
  /** At most MAX_RECONCILED_CANCELLATIONS, the newest first. */
  cancelled: { purchaseId: string; quantity: number }[];
  cancelledTotal: number;
}

export async function saleLedger(db: Db, saleId: string, lock = false): Promise<SaleLedger | undefined> {
  const { rows } = await db.query<{ stock: number; units: number; by_buyer: { b: string; q: number }[]; cancelled: { p: string; q: number }[] | null; cancelled_total: number }>(
    `SELECT s.stock,
            (SELECT coalesce(sum(quantity), 0)::int FROM orders WHERE sale_id = s.id AND status = 'confirmed') AS units,
            (SELECT coalesce(json_agg(json_build_object('b', buyer_id, 'q', q)), '[]') FROM
               (SELECT buyer_id, sum(quantity)::int AS q FROM orders WHERE sale_id = s.id AND status = 'confirmed' GROUP BY buyer_id) b) AS by_buyer,
            (SELECT json_agg(json_build_object('p', purchase_id, 'q', quantity)) FROM
               (SELECT purchase_id, quantity FROM orders WHERE sale_id = s.id AND status = 'cancelled'
                 ORDER BY coalesce(cancelled_at, settled_at) DESC LIMIT $2) c) AS cancelled,
            (SELECT count(*)::int FROM orders WHERE sale_id = s.id AND status = 'cancelled') AS cancelled_total
       FROM sales s WHERE s.id = $1 ${lock ? 'FOR UPDATE OF s' : ''}`,
    [saleId, MAX_RECONCILED_CANCELLATIONS],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    stock: r.stock, confirmedUnits: r.units, confirmedByBuyer: r.by_buyer.map((x) => ({ buyerId: x.b, quantity: x.q })),
    cancelled: (r.cancelled ?? []).map((x) => ({ purchaseId: x.p, quantity: x.q })), cancelledTotal: r.cancelled_total,
  };
}

/** The orders of these purchases that exist (any status). */
export async function findOrders(db: Db, purchaseIds: string[]): Promise<OrderRecord[]> {
  if (purchaseIds.length === 0) return [];
  const { rows } = await db.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE purchase_id = ANY($1::text[])`, [purchaseIds]);
  return rows.map(orderOf);
}
