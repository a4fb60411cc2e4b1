/**
 * Buyers and their wallets: operators create buyers and credit wallets
 * (integer minor units, one wallet per currency); every credit is a ledger
 * entry keyed by its reference, so a retried credit is applied once.
 */
import { AppError } from '../platform/errors.js';
import { newUserId } from '../platform/ids.js';
import { inTransaction, type Pool } from '../platform/db/pool.js';

export interface NewBuyer {
  name: string;
  email?: string;
}

export interface Buyer {
  id: string;
  name: string;
  email: string | null;
  createdAt: string;
}

export interface Wallet {
  userId: string;
  balances: { currency: string; balance: number }[];
}

export async function createBuyers(pool: Pool, buyers: NewBuyer[]): Promise<Buyer[]> {
  const ids = buyers.map(() => newUserId());
  try {
    const { rows } = await pool.query<{ id: string; name: string; email: string | null; created_at: Date }>(
      `INSERT INTO users (id, kind, name, email)
       SELECT id, 'buyer', name, email FROM unnest($1::text[], $2::text[], $3::text[]) AS t(id, name, email)
       RETURNING id, name, email, created_at`,
      [ids, buyers.map((b) => b.name), buyers.map((b) => b.email ?? null)],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => {
      const r = byId.get(id)!;
      return { id: r.id, name: r.name, email: r.email, createdAt: r.created_at.toISOString() };
    });
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new AppError('CONFLICT', 'a buyer with this email already exists');
    throw err;
  }
}

/** Creates a seller and an API key for them; the key is returned once and stored hashed. */
export async function createSeller(pool: Pool, name: string, email: string | undefined, issueKey: (userId: string) => Promise<string>): Promise<Buyer & { apiKey: string }> {
  const id = newUserId();
  try {
    const { rows } = await pool.query<{ id: string; name: string; email: string | null; created_at: Date }>(
      `INSERT INTO users (id, kind, name, email) VALUES ($1, 'seller', $2, $3) RETURNING id, name, email, created_at`,
      [id, name, email ?? null],
    );
    const r = rows[0]!;
    return { id: r.id, name: r.name, email: r.email, createdAt: r.created_at.toISOString(), apiKey: await issueKey(r.id) };
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new AppError('CONFLICT', 'a user with this email already exists');
    throw err;
  }
}

export async function requireBuyer(pool: Pool, userId: string): Promise<void> {
  const { rowCount } = await pool.query(`SELECT 1 FROM users WHERE id = $1 AND kind = 'buyer' AND deleted_at IS NULL`, [userId]);
  if (rowCount === 0) throw new AppError('NOT_FOUND', 'no such buyer');
}

export async function readWallet(pool: Pool, userId: string): Promise<Wallet> {
  const { rows } = await pool.query<{ currency: string; balance: number }>(
    'SELECT currency, balance FROM wallets WHERE user_id = $1 ORDER BY currency',
    [userId],
  );
  return { userId, balances: rows };
}

/** Credits a wallet once per `ref`; returns the balance after it (and whether this call applied it). */
export async function creditWallet(
  pool: Pool,
  userId: string,
  currency: string,
  amount: number,
  ref: string,
): Promise<{ balance: number; applied: boolean }> {
  await requireBuyer(pool, userId);
  return inTransaction(pool, async (c) => {
    const entry = await c.query(
      `INSERT INTO ledger_entries (ref, user_id, currency, amount, kind) VALUES ($1, $2, $3, $4, 'credit') ON CONFLICT (ref) DO NOTHING`,
      [ref, userId, currency, amount],
    );
    const applied = entry.rowCount === 1;
    const { rows } = await c.query<{ balance: number }>(
      `INSERT INTO wallets (user_id, currency, balance) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, currency) DO UPDATE SET balance = wallets.balance + EXCLUDED.balance, updated_at = now()
       RETURNING balance`,
      [userId, currency, applied ? amount : 0],
    );
    return { balance: rows[0]!.balance, applied };
  });
}
