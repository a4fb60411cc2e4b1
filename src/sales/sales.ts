/**
 * Sales: terms live in Postgres (the record), the live state in Redis (the
 * decision point). Creating, adding stock or closing writes both; a sale
 * missing from Redis (a flushed or replaced Redis) is loaded again from
 * Postgres on first use, with its settled quantities.
 */
import type { Redis } from 'ioredis';
import { AppError } from '../platform/errors.js';
import { newSaleId } from '../platform/ids.js';
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { OUTBOX_REGISTRY } from '../platform/messaging/outbox.js';
import { saleKeys } from './keys.js';
import { addStock as addStockScript, loadSale, readLiveSale, type LiveSale, type SaleTerms } from './scripts.js';
import type { Principal } from '../platform/auth/api-keys.js';
import { isRealDateTime } from '../platform/time.js';

/** Most units one sale may hold. */
export const MAX_STOCK = 10_000_000;

export interface NewSale {
  name: string;
  sku: string;
  unitPrice: number;
  currency: string;
  stock: number;
  perBuyerLimit: number;
  startsAt: string;
  endsAt: string;
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
}

export interface SaleView {
  id: string;
  sellerId: string | null;
  name: string;
  sku: string;
  unitPrice: number;
  currency: string;
  stock: number;
  perBuyerLimit: number;
  startsAt: string;
  endsAt: string;
  status: 'scheduled' | 'open' | 'ended' | 'closed';
  live: Omit<LiveSale, 'status'> | null;
}

const COLUMNS = 'id, seller_id, name, sku, unit_price, currency, stock, per_buyer_limit, starts_at, ends_at, status, created_at';

function termsOf(r: SaleRow): SaleTerms {
  return {
    id: r.id, status: r.status, startsAt: r.starts_at.getTime(), endsAt: r.ends_at.getTime(),
    perBuyerLimit: r.per_buyer_limit, unitPrice: r.unit_price, currency: r.currency, stock: r.stock,
  };
}

function viewOf(r: SaleRow, live: LiveSale | undefined): SaleView {
  const now = Date.now();
  const status = r.status === 'closed' ? 'closed' : now < r.starts_at.getTime() ? 'scheduled' : now >= r.ends_at.getTime() ? 'ended' : 'open';
  return {
    id: r.id, sellerId: r.seller_id, name: r.name, sku: r.sku, unitPrice: r.unit_price, currency: r.currency,
    stock: r.stock, perBuyerLimit: r.per_buyer_limit, startsAt: r.starts_at.toISOString(), endsAt: r.ends_at.toISOString(),
    status,
    live: live ? { stock: live.stock, available: live.available, reserved: live.reserved, sold: live.sold } : null,
  };
}

export class Sales {
  constructor(
    private readonly pool: Pool,
    private readonly redis: Redis,
  ) {}

  async create(input: NewSale, by: Principal): Promise<SaleView> {
    for (const field of ['startsAt', 'endsAt'] as const) {
      if (!isRealDateTime(input[field])) throw AppError.invalid(`/${field}`, 'is not a real date-time', `${field} is not a real date-time`);
    }
    const startsAt = new Date(input.startsAt);
    const endsAt = new Date(input.endsAt);
    if (!(endsAt.getTime() > startsAt.getTime())) throw AppError.invalid('/endsAt', 'must be after startsAt', 'endsAt must be after startsAt');
    const { rows } = await this.pool.query<SaleRow>(
      `INSERT INTO sales (id, seller_id, name, sku, unit_price, currency, stock, per_buyer_limit, starts_at, ends_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
      [newSaleId(), by.role === 'seller' ? by.userId : null, input.name, input.sku, input.unitPrice, input.currency,
        input.stock, input.perBuyerLimit, startsAt, endsAt],
    );
    const row = rows[0]!;
    await this.load(row);
    return viewOf(row, await readLiveSale(this.redis, row.id));
  }

  async get(saleId: string): Promise<SaleView> {
    const row = await this.row(saleId);
    if (!row) throw new AppError('NOT_FOUND', 'no such sale');
    return viewOf(row, await readLiveSale(this.redis, saleId));
  }

  async listActive(limit: number, after: string | undefined): Promise<{ items: SaleView[]; next: string | null }> {
    const { rows } = await this.pool.query<SaleRow>(
      `SELECT ${COLUMNS} FROM sales WHERE status = 'open' AND ends_at > now() AND ($2::text IS NULL OR id > $2)
       ORDER BY id LIMIT $1`,
      [limit + 1, after ?? null],
    );
    const page = rows.slice(0, limit);
    const lives = await Promise.all(page.map((r) => readLiveSale(this.redis, r.id)));
    return { items: page.map((r, i) => viewOf(r, lives[i])), next: rows.length > limit ? page[page.length - 1]!.id : null };
  }

  async addStock(saleId: string, units: number, by: Principal): Promise<SaleView> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<SaleRow>(`SELECT ${COLUMNS} FROM sales WHERE id = $1 FOR UPDATE`, [saleId]);
      const row = this.authorized(rows[0], by);
      if (row.status === 'closed') throw new AppError('SALE_ENDED', 'the sale is closed');
      if (row.stock + units > MAX_STOCK) throw AppError.invalid('/units', 'too large', `stock would exceed ${MAX_STOCK.toLocaleString('en')}`);
      await this.ensureLoaded(saleId, row);
      await c.query('UPDATE sales SET stock = stock + $2 WHERE id = $1', [saleId, units]);
      // Redis is updated inside the transaction: if it fails, Postgres rolls back too.
      await addStockScript(this.redis, saleId, units);
      return viewOf({ ...row, stock: row.stock + units }, await readLiveSale(this.redis, saleId));
    });
  }

  async close(saleId: string, by: Principal): Promise<SaleView> {
    const { rows } = await this.pool.query<SaleRow>(`SELECT ${COLUMNS} FROM sales WHERE id = $1`, [saleId]);
    this.authorized(rows[0], by);
    const { rows: closed } = await this.pool.query<SaleRow>(
      `UPDATE sales SET status = 'closed', closed_at = coalesce(closed_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
      [saleId],
    );
    await this.load(closed[0]!);
    return viewOf(closed[0]!, await readLiveSale(this.redis, saleId));
  }

  /** Loads a sale into Redis if Redis does not know it. Returns false when the sale does not exist. */
  async ensureLoaded(saleId: string, known?: SaleRow): Promise<boolean> {
    if ((await this.redis.exists(saleKeys.sale(saleId))) === 1) return true;
    const row = known ?? (await this.row(saleId));
    if (!row) return false;
    await this.load(row);
    return true;
  }

  /** Loads every sale that can still sell (api start-up). */
  async loadActive(): Promise<number> {
    const { rows } = await this.pool.query<SaleRow>(`SELECT ${COLUMNS} FROM sales WHERE status = 'open' AND ends_at > now()`);
    for (const r of rows) await this.load(r);
    return rows.length;
  }

  private async load(row: SaleRow): Promise<void> {
    const { rows } = await this.pool.query<{ buyer_id: string; quantity: number }>(
      `SELECT buyer_id, sum(quantity)::int AS quantity FROM orders WHERE sale_id = $1 AND status = 'confirmed' GROUP BY buyer_id`,
      [row.id],
    );
    const sold = rows.reduce((n, r) => n + r.quantity, 0);
    const created = await loadSale(this.redis, termsOf(row), sold);
    if (created && rows.length > 0) {
      await this.redis.hset(saleKeys.bought(row.id), Object.fromEntries(rows.map((r) => [r.buyer_id, r.quantity])));
    }
    await this.redis.sadd(OUTBOX_REGISTRY, saleKeys.outbox(row.id));
  }

  private async row(saleId: string): Promise<SaleRow | undefined> {
    const { rows } = await this.pool.query<SaleRow>(`SELECT ${COLUMNS} FROM sales WHERE id = $1`, [saleId]);
    return rows[0];
  }

  private authorized(row: SaleRow | undefined, by: Principal): SaleRow {
    // A seller sees another seller's sale as absent, not as forbidden.
    if (!row || (by.role === 'seller' && row.seller_id !== by.userId)) throw new AppError('NOT_FOUND', 'no such sale');
    return row;
  }
}
